package main

import (
	"slices"
	"testing"
)

// Every round visits every target once, and over the default three rounds
// no target runs behind the same neighbour every time (a rotation did
// that, for every target).
func TestRoundOrderVariesNeighbours(t *testing.T) {
	for n := 2; n <= 6; n++ {
		before := map[int][]int{} // target -> its predecessor in each round (-1: first)
		for round := range 3 {
			order := roundOrder(n, round)
			if got := slices.Sorted(slices.Values(order)); !slices.Equal(got, seq(n)) {
				t.Fatalf("n=%d round %d: order %v is not a permutation", n, round, order)
			}
			for i, tgt := range order {
				prev := -1
				if i > 0 {
					prev = order[i-1]
				}
				before[tgt] = append(before[tgt], prev)
			}
		}
		if n < 4 {
			continue // too few targets for every one to change neighbours
		}
		for tgt, prevs := range before {
			if prevs[0] >= 0 && prevs[0] == prevs[1] && prevs[1] == prevs[2] {
				t.Errorf("n=%d: target %d follows %d in every round", n, tgt, prevs[0])
			}
		}
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
