package backbeat

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"chorus"
)

// Timestamp is a hybrid logical clock reading: wall milliseconds and a
// logical counter that orders events within one millisecond (or while the
// wall clock lags a timestamp already seen). Its text form is
// "<wall_ms>.<logical>", e.g. "1749038400000.2".
type Timestamp struct {
	WallMS  int64
	Logical uint32
}

// String is the text form carried in BeatFrame.hlc and StatusClaim.hlc.
func (t Timestamp) String() string {
	return strconv.FormatInt(t.WallMS, 10) + "." + strconv.FormatUint(uint64(t.Logical), 10)
}

// Compare returns -1, 0 or +1 as t is before, equal to or after u.
func (t Timestamp) Compare(u Timestamp) int {
	switch {
	case t.WallMS < u.WallMS:
		return -1
	case t.WallMS > u.WallMS:
		return 1
	case t.Logical < u.Logical:
		return -1
	case t.Logical > u.Logical:
		return 1
	}
	return 0
}

// ParseTimestamp reads the text form of a Timestamp.
func ParseTimestamp(s string) (Timestamp, error) {
	wall, logical, ok := strings.Cut(s, ".")
	if !ok {
		return Timestamp{}, fmt.Errorf("%w: hlc %.40q: want <wall_ms>.<logical>", chorus.ErrInvalid, s)
	}
	w, err := strconv.ParseInt(wall, 10, 64)
	if err != nil || w < 0 {
		return Timestamp{}, fmt.Errorf("%w: hlc %.40q: wall part is not a non-negative integer", chorus.ErrInvalid, s)
	}
	l, err := strconv.ParseUint(logical, 10, 32)
	if err != nil {
		return Timestamp{}, fmt.Errorf("%w: hlc %.40q: logical part is not a 32-bit unsigned integer", chorus.ErrInvalid, s)
	}
	return Timestamp{WallMS: w, Logical: uint32(l)}, nil
}

// HLC is a hybrid logical clock (Kulkarni et al., 2014): its readings never
// go backwards and always follow every timestamp it has been updated
// with, while staying within the largest clock offset seen of physical
// time. The wall time is passed in, so the clock is deterministic under
// test. The zero HLC is ready to use; it is safe for concurrent use.
type HLC struct {
	mu   sync.Mutex
	last Timestamp
}

// Now returns a reading for a local event (sending a message) at wall
// time wall: strictly after every earlier reading and update.
func (c *HLC) Now(wall time.Time) Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	pt := wall.UnixMilli()
	if pt > c.last.WallMS {
		c.last = Timestamp{WallMS: pt}
	} else {
		c.last.Logical++
	}
	return c.last
}

// Update merges a received timestamp at wall time wall and returns the
// reading of the receive event: strictly after both the remote timestamp
// and every earlier local reading.
func (c *HLC) Update(remote Timestamp, wall time.Time) Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	pt := wall.UnixMilli()
	prev := c.last
	switch {
	case pt > prev.WallMS && pt > remote.WallMS:
		c.last = Timestamp{WallMS: pt}
	case remote.WallMS > prev.WallMS:
		c.last = Timestamp{WallMS: remote.WallMS, Logical: remote.Logical + 1}
	case prev.WallMS > remote.WallMS:
		c.last.Logical++
	default: // equal wall parts
		c.last.Logical = max(prev.Logical, remote.Logical) + 1
	}
	return c.last
}

// Last returns the latest reading without advancing the clock.
func (c *HLC) Last() Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}
