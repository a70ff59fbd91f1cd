// Package chorus is the vocabulary of the system: the domain types shared by
// every other package (tasks, task keys, results, agents) and the sentinel
// errors callers branch on. It imports the standard library only.
//
// Everything here is a plain value type; none of it holds state or locks, so
// values may be copied and shared freely between goroutines.
package chorus
