package main

import (
	"testing"
	"time"
)

func TestParseServerTiming(t *testing.T) {
	got := parseServerTiming(`store;dur=1.234, app;dur=5.6, cache;desc="hit", db;dur="0.5"`)
	if got["store"] != 1.234 || got["app"] != 5.6 || got["db"] != 0.5 {
		t.Fatalf("unexpected %v", got)
	}
	if _, ok := got["cache"]; ok {
		t.Fatalf("metric without dur must be ignored: %v", got)
	}
	if len(parseServerTiming("")) != 0 {
		t.Fatal("empty header must give no metrics")
	}
}

func TestPercentileNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if percentile(d, 50) != 50*time.Millisecond || percentile(d, 99) != 99*time.Millisecond ||
		percentile(d, 100) != 100*time.Millisecond {
		t.Fatal("nearest rank percentiles are wrong")
	}
	if percentile(d[:1], 99) != time.Millisecond {
		t.Fatal("single sample")
	}
}

func TestIDsForDisjoint(t *testing.T) {
	all := []string{"a", "b", "c", "d", "e"}
	seen := map[string]int{}
	for w := 0; w < 2; w++ {
		for _, id := range idsFor(all, "disjoint", w, 2) {
			seen[id]++
		}
	}
	if len(seen) != 5 {
		t.Fatalf("every id must be owned: %v", seen)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("id %s owned by %d workers", id, n)
		}
	}
	if got := idsFor(all, "spread", 1, 2); len(got) != 5 || got[0] != "c" {
		t.Fatalf("spread must give every id, rotated: %v", got)
	}
}
