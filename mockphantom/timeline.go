package mockphantom

import (
	"slices"
	"strconv"
	"time"
)

// The timeline of a case: marks on a time axis, one lane per kind of
// mark: the alerts (artifacts), below them the actions playbooks ran on
// the case, and the notes written into it. Each kind has a shape of its
// own, so that the lanes read apart in any colour scheme.

// markKind is what a mark stands for; each kind has its own lane.
type markKind string

const (
	// markAlert is an artifact: one alert of the incident.
	markAlert markKind = "alert"
	// markAction is an action run of a playbook, at its start.
	markAction markKind = "action"
	// markNote is a note, at its creation.
	markNote markKind = "note"
)

// markShape is how a mark is drawn.
type markShape string

const (
	shapeCircle  markShape = "circle"
	shapeSquare  markShape = "square"
	shapeDiamond markShape = "diamond"
)

// laneOrder orders the lanes, top to bottom, and names and shapes them.
var laneOrder = []struct {
	kind  markKind
	label string
	shape markShape
}{
	{markAlert, "alerts", shapeCircle},
	{markAction, "actions", shapeSquare},
	{markNote, "notes", shapeDiamond},
}

// timelineMark is one thing that happened at At.
type timelineMark struct {
	Kind  markKind
	At    time.Time
	Title string // the tooltip: several lines, already cut and cleaned
	Href  string // where the mark leads, e.g. "#artifact-12"
	Class string // a style class, e.g. the severity's
}

// Geometry of the drawing, in SVG user units (the SVG scales to the width
// of the page).
const (
	tlWidth      = 1300
	tlLeft       = 70 // room for the lane labels
	tlRight      = 40 // room for the last tick's label
	tlTop        = 10
	tlLaneHeight = 34
	tlAxisHeight = 34
	tlMaxTicks   = 7
)

// timelineView is the laid-out timeline that the "timeline" template
// draws.
type timelineView struct {
	Width, Height int
	Left, Right   int // the ends of the time axis
	AxisWidth     int
	AxisY         int
	Lanes         []timelineLane
	Marks         []placedMark
	Ticks         []timelineTick
	From, To      string // the ends of the span, for the caption
	Span          string
}

type timelineLane struct {
	Label     string
	Y, Top, H int
}

type placedMark struct {
	timelineMark
	Shape markShape
	X, Y  float64
}

// markSize is half the width of a mark, in SVG user units.
const markSize = 6

// BoxX and BoxY are the top left corner of a square mark, BoxSize its
// width and height.
func (m placedMark) BoxX() float64 { return m.X - markSize }
func (m placedMark) BoxY() float64 { return m.Y - markSize }
func (placedMark) BoxSize() int    { return 2 * markSize }

// Points are the corners of a diamond mark, for a polygon.
func (m placedMark) Points() string {
	const d = markSize + 1.5 // a diamond looks smaller than a square of its width
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	return f(m.X) + "," + f(m.Y-d) + " " + f(m.X+d) + "," + f(m.Y) + " " + f(m.X) + "," + f(m.Y+d) + " " + f(m.X-d) + "," + f(m.Y)
}

type timelineTick struct {
	X     float64
	Label string
}

// tickSteps are the spacings the axis may use, smallest first.
var tickSteps = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour, 365 * 24 * time.Hour,
}

// layoutTimeline places marks on a time axis. Marks without a time are
// left out. It returns false when no mark has a time.
func layoutTimeline(marks []timelineMark) (timelineView, bool) {
	var v timelineView
	var from, to time.Time
	kinds := map[markKind]bool{}
	for _, m := range marks {
		if m.At.IsZero() {
			continue
		}
		if from.IsZero() || m.At.Before(from) {
			from = m.At
		}
		if to.IsZero() || m.At.After(to) {
			to = m.At
		}
		kinds[m.Kind] = true
	}
	if from.IsZero() {
		return v, false
	}
	v.From, v.To = from.UTC().Format("2006-01-02 15:04:05.000Z"), to.UTC().Format("2006-01-02 15:04:05.000Z")
	v.Span = roundSpan(to.Sub(from))
	// A span of nothing (one alert, or alerts at one instant) is drawn as a
	// minute around it, the marks in the middle.
	lo, hi := from, to
	if !hi.After(lo) {
		lo, hi = lo.Add(-30*time.Second), hi.Add(30*time.Second)
	}

	laneY := map[markKind]int{}
	shapes := map[markKind]markShape{}
	y := tlTop
	for _, l := range laneOrder {
		shapes[l.kind] = l.shape
		if kinds[l.kind] {
			v.Lanes = append(v.Lanes, timelineLane{Label: l.label, Top: y, H: tlLaneHeight, Y: y + tlLaneHeight/2})
			laneY[l.kind] = y + tlLaneHeight/2
			y += tlLaneHeight
		}
	}
	for k := range kinds { // kinds without a lane of their own share the last
		if _, ok := laneY[k]; !ok {
			laneY[k] = y - tlLaneHeight/2
		}
	}
	v.Width, v.Left, v.Right = tlWidth, tlLeft, tlWidth-tlRight
	v.AxisWidth = v.Right - v.Left
	v.AxisY = y + 4
	v.Height = v.AxisY + tlAxisHeight - 10

	span := float64(hi.Sub(lo))
	x := func(t time.Time) float64 {
		return float64(v.Left) + float64(t.Sub(lo))/span*float64(v.Right-v.Left)
	}
	for _, m := range marks {
		if !m.At.IsZero() {
			shape := shapes[m.Kind]
			if shape == "" {
				shape = shapeCircle
			}
			v.Marks = append(v.Marks, placedMark{timelineMark: m, Shape: shape, X: x(m.At), Y: float64(laneY[m.Kind])})
		}
	}
	// Marks of the same time are drawn in order; the latest on top.
	slices.SortStableFunc(v.Marks, func(a, b placedMark) int { return a.At.Compare(b.At) })

	step := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if hi.Sub(lo)/s <= tlMaxTicks {
			step = s
			break
		}
	}
	layout := tickLayout(step, lo, hi)
	for t := lo.UTC().Truncate(step); !t.After(hi); t = t.Add(step) {
		if t.Before(lo) {
			continue
		}
		v.Ticks = append(v.Ticks, timelineTick{X: x(t), Label: t.Format(layout)})
	}
	return v, true
}

// tickLayout is the time layout of the axis labels for a step.
func tickLayout(step time.Duration, lo, hi time.Time) string {
	switch {
	case step < time.Second:
		return "15:04:05.000"
	case step < time.Minute:
		return "15:04:05"
	case step < 24*time.Hour && lo.UTC().YearDay() == hi.UTC().YearDay():
		return "15:04"
	case step < 24*time.Hour:
		return "Jan 2 15:04"
	default:
		return "2006-01-02"
	}
}

// roundSpan writes a duration the way people say it: "4 min 12 s".
func roundSpan(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		d = d.Round(time.Second)
		return itoaDur(d/time.Minute) + " min " + itoaDur((d%time.Minute)/time.Second) + " s"
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		return itoaDur(d/time.Hour) + " h " + itoaDur((d%time.Hour)/time.Minute) + " min"
	default:
		return itoaDur(d.Round(time.Hour)/(24*time.Hour)) + " days"
	}
}

// itoaDur writes a count (a duration divided by a unit).
func itoaDur(n time.Duration) string { return strconv.FormatInt(int64(n), 10) }
