package store

import "time"

// TimeLayout is how SOAR writes times, and how they are stored: UTC with
// microseconds, so that text order is time order.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// FormatTime returns t in TimeLayout.
func FormatTime(t time.Time) string {
	return t.UTC().Format(TimeLayout)
}

// timeLayouts are the layouts ParseTime accepts. time.Parse accepts a
// fraction of seconds after the seconds even when the layout has none;
// times without a zone are UTC.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
}

// ParseTime reads a time the way the API accepts it, in requests and in
// filters: RFC 3339, with a space for the T, or without a zone.
func ParseTime(s string) (time.Time, error) {
	var firstErr error
	for _, layout := range timeLayouts {
		t, err := time.Parse(layout, s)
		if err == nil {
			return t, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return time.Time{}, firstErr
}
