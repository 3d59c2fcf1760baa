package forwarder

import (
	"testing"
	"time"
)

func TestCaseIDsTrust(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	c := newCaseIDs(5 * time.Second)
	c.now = func() time.Time { return now }
	check := func(cse string, wantID int64, wantKnown, wantTrusted bool) {
		t.Helper()
		id, known, trusted := c.get(cse)
		if id != wantID || known != wantKnown || trusted != wantTrusted {
			t.Errorf("get(%s) = %d, known %v, trusted %v; want %d, %v, %v", cse, id, known, trusted, wantID, wantKnown, wantTrusted)
		}
	}
	c.set("a", 1)
	c.set("b", 2)
	check("a", 1, true, true)
	now = now.Add(5 * time.Second)
	check("a", 1, true, false) // SOAR's word is old
	c.set("a", 1)              // and confirmed again
	check("a", 1, true, true)
	check("b", 2, true, false)

	c.set("b", 2)
	c.distrust() // a failed request: SOAR may have changed
	check("a", 1, true, false)
	check("b", 2, true, false)

	c.set("a", 1)
	c.set("c", 2) // SOAR gave id 2, which b had, to a new case
	check("b", 0, false, false)
	check("a", 1, true, false)
	check("c", 2, true, true)

	c.forget("c")
	check("c", 0, false, false)
	c.set("d", 2) // id 2 is free again: no sign of change
	check("a", 1, true, false)
	check("d", 2, true, true)
}
