package forwarder

import "time"

// SetCaseCheckInterval changes how long a forwarder trusts SOAR's word on a
// cached case id, before Run.
func SetCaseCheckInterval(f *Forwarder, d time.Duration) { f.caseCheckInterval = d }
