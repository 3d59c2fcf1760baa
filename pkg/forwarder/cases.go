package forwarder

import (
	"sync"
	"time"
)

// caseIDs remembers the SOAR id of each case (by its source_data_identifier)
// and whether SOAR confirmed it recently enough to be trusted.
//
// A cached id is not trusted forever: SOAR may lose data (a restore, a
// mock without storage that restarts) and hand the same ids to other
// containers, and an alert must never go into a case that is not its
// incident's. An id is trusted for checkEvery after SOAR last confirmed it,
// and not at all once SOAR may have changed: after a failed request or
// check, or when SOAR gives a new container an id the cache holds for
// another case. An id that is not trusted is checked before use.
type caseIDs struct {
	checkEvery time.Duration
	now        func() time.Time

	mu    sync.Mutex
	ids   map[string]knownCase
	owner map[int64]string // id -> case, to see an id handed out twice
	epoch uint64           // bumped when SOAR may have changed
}

type knownCase struct {
	id        int64
	confirmed time.Time
	epoch     uint64
}

// caseCheckInterval is how long SOAR's word that an id holds a case is
// trusted while nothing suggests SOAR changed.
const caseCheckInterval = 5 * time.Second

// maxCachedCases bounds the cache; it is dropped when full.
const maxCachedCases = 100_000

func newCaseIDs(checkEvery time.Duration) *caseIDs {
	return &caseIDs{checkEvery: checkEvery, now: time.Now, ids: map[string]knownCase{}, owner: map[int64]string{}}
}

// get returns the id of cse, whether it is known, and whether it can be
// used without asking SOAR first.
func (c *caseIDs) get(cse string) (id int64, known, trusted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.ids[cse]
	if !ok {
		return 0, false, false
	}
	return k.id, true, k.epoch == c.epoch && c.now().Sub(k.confirmed) < c.checkEvery
}

// set records that SOAR holds cse under id, as it just said. An id the
// cache held for another case means SOAR hands out ids again: no cached id
// is trusted any more.
func (c *caseIDs) set(cse string, id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if other, ok := c.owner[id]; ok && other != cse {
		delete(c.ids, other)
		c.epoch++
	}
	if len(c.ids) >= maxCachedCases {
		c.ids, c.owner = map[string]knownCase{}, map[int64]string{}
	}
	if old, ok := c.ids[cse]; ok && old.id != id {
		delete(c.owner, old.id)
	}
	c.ids[cse] = knownCase{id: id, confirmed: c.now(), epoch: c.epoch}
	c.owner[id] = cse
}

// forget drops what is known of cse.
func (c *caseIDs) forget(cse string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.ids[cse]; ok {
		delete(c.owner, k.id)
		delete(c.ids, cse)
	}
}

// distrust makes every cached id be checked before its next use.
func (c *caseIDs) distrust() {
	c.mu.Lock()
	c.epoch++
	c.mu.Unlock()
}
