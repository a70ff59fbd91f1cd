package backbeat

import (
	"errors"
	"testing"
	"time"

	"chorus"
)

func ms(v int64) time.Time { return time.UnixMilli(v) }

func TestHLCNowAndUpdate(t *testing.T) {
	type step struct {
		update bool
		remote Timestamp
		wall   int64
		want   Timestamp
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"wall clock moving forward resets the counter", []step{
			{wall: 100, want: Timestamp{100, 0}},
			{wall: 101, want: Timestamp{101, 0}},
		}},
		{"same millisecond counts up", []step{
			{wall: 100, want: Timestamp{100, 0}},
			{wall: 100, want: Timestamp{100, 1}},
			{wall: 100, want: Timestamp{100, 2}},
		}},
		{"wall clock stepping back never goes back", []step{
			{wall: 100, want: Timestamp{100, 0}},
			{wall: 90, want: Timestamp{100, 1}},
			{wall: 100, want: Timestamp{100, 2}},
			{wall: 101, want: Timestamp{101, 0}},
		}},
		{"a remote ahead of us is followed", []step{
			{wall: 100, want: Timestamp{100, 0}},
			{update: true, remote: Timestamp{150, 4}, wall: 101, want: Timestamp{150, 5}},
			{wall: 102, want: Timestamp{150, 6}},
			{wall: 151, want: Timestamp{151, 0}},
		}},
		{"a remote behind us only counts", []step{
			{wall: 100, want: Timestamp{100, 0}},
			{update: true, remote: Timestamp{50, 9}, wall: 100, want: Timestamp{100, 1}},
		}},
		{"a remote equal to us takes the larger counter", []step{
			{wall: 100, want: Timestamp{100, 0}},
			{update: true, remote: Timestamp{100, 7}, wall: 100, want: Timestamp{100, 8}},
			{update: true, remote: Timestamp{100, 2}, wall: 99, want: Timestamp{100, 9}},
		}},
		{"wall ahead of both wins", []step{
			{wall: 100, want: Timestamp{100, 0}},
			{update: true, remote: Timestamp{120, 3}, wall: 200, want: Timestamp{200, 0}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h HLC
			prev := Timestamp{}
			for i, s := range c.steps {
				var got Timestamp
				if s.update {
					got = h.Update(s.remote, ms(s.wall))
					if got.Compare(s.remote) <= 0 {
						t.Errorf("step %d: %v is not after the remote %v", i, got, s.remote)
					}
				} else {
					got = h.Now(ms(s.wall))
				}
				if got != s.want {
					t.Errorf("step %d: got %v, want %v", i, got, s.want)
				}
				if i > 0 && got.Compare(prev) <= 0 {
					t.Errorf("step %d: %v is not after %v", i, got, prev)
				}
				prev = got
			}
			if h.Last() != prev {
				t.Errorf("Last = %v, want %v", h.Last(), prev)
			}
		})
	}
}

func TestTimestampText(t *testing.T) {
	for _, ts := range []Timestamp{{0, 0}, {1749038400000, 3}, {1, 4294967295}} {
		got, err := ParseTimestamp(ts.String())
		if err != nil || got != ts {
			t.Errorf("ParseTimestamp(%q) = %v, %v; want %v", ts.String(), got, err, ts)
		}
	}
	if s := (Timestamp{1749038400000, 2}).String(); s != "1749038400000.2" {
		t.Errorf("String = %q", s)
	}
	for _, bad := range []string{"", "12", "a.1", "1.b", "-1.0", "1.4294967296", "1.2.3"} {
		if _, err := ParseTimestamp(bad); !errors.Is(err, chorus.ErrInvalid) {
			t.Errorf("ParseTimestamp(%q) err = %v, want ErrInvalid", bad, err)
		}
	}
	if (Timestamp{5, 1}).Compare(Timestamp{5, 1}) != 0 || (Timestamp{5, 1}).Compare(Timestamp{5, 2}) != -1 || (Timestamp{6, 0}).Compare(Timestamp{5, 9}) != 1 {
		t.Error("Compare orders by wall then logical")
	}
}
