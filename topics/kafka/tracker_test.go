package kafka

import (
	"reflect"
	"testing"
)

// op is one step applied to an ackTracker in a table test.
type op struct {
	kind      string // "deliver", "ack", "committed"
	partition int
	offset    int64
}

func deliver(p int, o int64) op   { return op{"deliver", p, o} }
func ack(p int, o int64) op       { return op{"ack", p, o} }
func committed(p int, o int64) op { return op{"committed", p, o} }

func TestAckTrackerCommitsOnlyContiguousAckedPrefix(t *testing.T) {
	cases := []struct {
		name string
		ops  []op
		want []position
	}{
		{
			name: "nothing delivered",
			want: nil,
		},
		{
			name: "delivered but not acked",
			ops:  []op{deliver(0, 0), deliver(0, 1)},
			want: nil,
		},
		{
			name: "in order acks",
			ops:  []op{deliver(0, 0), deliver(0, 1), ack(0, 0), ack(0, 1)},
			want: []position{{0, 1}},
		},
		{
			name: "later ack waits for the earlier one",
			ops:  []op{deliver(0, 0), deliver(0, 1), deliver(0, 2), ack(0, 1), ack(0, 2)},
			want: nil,
		},
		{
			name: "gap fills and the whole prefix becomes committable",
			ops:  []op{deliver(0, 0), deliver(0, 1), deliver(0, 2), ack(0, 2), ack(0, 1), ack(0, 0)},
			want: []position{{0, 2}},
		},
		{
			name: "prefix stops at the first unacked message (a nacked one stays unacked)",
			ops:  []op{deliver(0, 0), deliver(0, 1), deliver(0, 2), deliver(0, 3), ack(0, 0), ack(0, 1), ack(0, 3)},
			want: []position{{0, 1}},
		},
		{
			name: "partitions are independent",
			ops: []op{
				deliver(0, 10), deliver(1, 5), deliver(0, 11), deliver(1, 6), deliver(2, 0),
				ack(0, 11), ack(1, 5), ack(2, 0),
			},
			want: []position{{1, 5}, {2, 0}},
		},
		{
			name: "offset holes (compaction, txn markers) do not block",
			ops:  []op{deliver(0, 3), deliver(0, 7), deliver(0, 20), ack(0, 3), ack(0, 7), ack(0, 20)},
			want: []position{{0, 20}},
		},
		{
			name: "already committed is not offered again",
			ops:  []op{deliver(0, 0), deliver(0, 1), ack(0, 0), ack(0, 1), committed(0, 1)},
			want: nil,
		},
		{
			name: "commit of an older prefix leaves the newer one committable",
			ops:  []op{deliver(0, 0), ack(0, 0), committed(0, 0), deliver(0, 1), ack(0, 1)},
			want: []position{{0, 1}},
		},
		{
			name: "commit confirmations never move backwards",
			ops:  []op{deliver(0, 0), deliver(0, 1), ack(0, 0), ack(0, 1), committed(0, 1), committed(0, 0)},
			want: nil,
		},
		{
			name: "ack of an unknown offset changes nothing",
			ops:  []op{deliver(0, 0), ack(0, 5), ack(3, 0)},
			want: nil,
		},
		{
			name: "rewind after rebalance drops pending from the rewound offset on",
			ops: []op{
				deliver(0, 5), deliver(0, 6), deliver(0, 7), ack(0, 5),
				deliver(0, 6), // group restarted the partition at 6
				ack(0, 7),     // the old 7 is gone: ignored
				ack(0, 6),
			},
			want: []position{{0, 6}},
		},
		{
			name: "rewind into acked territory never lowers the acked prefix",
			ops: []op{
				deliver(0, 5), deliver(0, 6), ack(0, 5), ack(0, 6), // commit of 6 failed
				deliver(0, 5), ack(0, 5), // redelivered 5 acked again
			},
			want: []position{{0, 6}},
		},
		{
			name: "rewound message left unacked keeps the old prefix committable only",
			ops: []op{
				deliver(0, 5), ack(0, 5), deliver(0, 6), ack(0, 6), committed(0, 6),
				deliver(0, 6), deliver(0, 7), ack(0, 7),
			},
			want: nil,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := newAckTracker()
			for _, o := range tc.ops {
				switch o.kind {
				case "deliver":
					tr.delivered(o.partition, o.offset)
				case "ack":
					tr.ack(o.partition, o.offset)
				case "committed":
					tr.committed([]position{{o.partition, o.offset}})
				}
			}
			if got := tr.committable(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("committable() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAckTrackerAckReportsUnknownOffsets(t *testing.T) {
	tr := newAckTracker()
	tr.delivered(0, 1)
	if tr.ack(0, 2) {
		t.Fatal("ack of an undelivered offset reported true")
	}
	if !tr.ack(0, 1) {
		t.Fatal("ack of a delivered offset reported false")
	}
	if tr.ack(0, 1) {
		t.Fatal("second ack of a folded offset reported true")
	}
}

func TestAckTrackerPendingStaysSmall(t *testing.T) {
	tr := newAckTracker()
	for i := int64(0); i < 10000; i++ {
		tr.delivered(0, i)
		tr.ack(0, i)
	}
	if n := len(tr.parts[0].pending); n != 0 {
		t.Fatalf("pending holds %d entries after every message was acked", n)
	}
	if got := tr.committable(); !reflect.DeepEqual(got, []position{{0, 9999}}) {
		t.Fatalf("committable() = %v", got)
	}
}
