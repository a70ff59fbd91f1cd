// Package fakeforge is the in-memory issue tracker behind the github and
// gitea fake servers (githubtest, giteatest): repositories, issues,
// comments, labels and assignees, with IDs handed out in creation order
// from one counter (as both forges do), fault injection, and a gate that
// holds matching comment writes until several have arrived, so that two
// claimers really interleave. The fakes add only each API's paths, JSON
// and headers on top.
//
// Concurrency: a Store is safe for concurrent use; one mutex guards all of
// its state. Gate waits happen outside the mutex.
package fakeforge
