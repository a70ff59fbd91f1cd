package main

import "math/rand/v2"

// edge is a dial from node From to an earlier node To.
type edge struct{ From, To int }

// topology returns the edges of a sparse connected graph on n nodes: each
// node i > 0 dials min(dials, i) distinct random nodes before it, so every
// node has a path to node 0. It also returns each node's degree.
func topology(rng *rand.Rand, n, dials int) ([]edge, []int) {
	var edges []edge
	deg := make([]int, n)
	for i := 1; i < n; i++ {
		for _, j := range rng.Perm(i)[:min(dials, i)] {
			edges = append(edges, edge{From: i, To: j})
			deg[i]++
			deg[j]++
		}
	}
	return edges, deg
}
