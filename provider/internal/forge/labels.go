package forge

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"chorus"
)

// Label prefixes that carry task fields (see the provider packages' doc).
const (
	PriorityPrefix  = "priority:"
	RolePrefix      = "role:"
	ExpertisePrefix = "expertise:"
	TypePrefix      = "type:"
	ProjectPrefix   = "project:"
	ModelPrefix     = "model:"
)

// applyLabels sets the task fields its labels name. A malformed value
// (priority:high, priority:11) is ignored and the label is kept in
// task.Labels only; when a single-valued prefix repeats, the first wins.
func applyLabels(task *chorus.Task, labels []string) {
	prioritySet := false
	for _, l := range labels {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) + ":" {
		case PriorityPrefix:
			if n, err := strconv.Atoi(v); err == nil && n >= 0 && n <= chorus.MaxPriority && !prioritySet {
				task.Priority, prioritySet = n, true
			}
		case RolePrefix:
			if task.Role == "" {
				task.Role = v
			}
		case ExpertisePrefix:
			if !slices.Contains(task.Expertise, v) {
				task.Expertise = append(task.Expertise, v)
			}
		case TypePrefix:
			if task.Type == "" {
				task.Type = v
			}
		case ProjectPrefix:
			if task.ProjectID == "" {
				task.ProjectID = v
			}
		case ModelPrefix:
			if task.Model == "" {
				task.Model = v
			}
		}
	}
}

var (
	// dependsPattern finds "depends on #3", "Depends on: #3, #4 and
	// acme/web#7", "blocked by #2".
	dependsPattern = regexp.MustCompile(`(?i)\b(?:depends\s+on|blocked\s+by)\s*:?\s*((?:(?:[A-Za-z0-9._-]+/[A-Za-z0-9._-]+)?#[0-9]+(?:\s*(?:,|and|&)\s*)?)+)`)
	refPattern     = regexp.MustCompile(`(?:([A-Za-z0-9._-]+/[A-Za-z0-9._-]+))?#([0-9]+)`)
)

// Dependencies returns the keys of the tasks the text says this issue
// depends on, in order of first mention, without itself or repeats. A
// bare #N is an issue of repo; owner/name#N another repository's.
func Dependencies(provider, repo string, number int, text string) []string {
	var deps []string
	for _, m := range dependsPattern.FindAllStringSubmatch(text, -1) {
		for _, ref := range refPattern.FindAllStringSubmatch(m[1], -1) {
			n, err := strconv.Atoi(ref[2])
			if err != nil || n <= 0 {
				continue
			}
			r := repo
			if ref[1] != "" {
				r = ref[1]
			}
			if strings.EqualFold(r, repo) && n == number {
				continue
			}
			key := chorus.TaskKey{Provider: provider, Repository: r, Number: n}.String()
			if !slices.Contains(deps, key) {
				deps = append(deps, key)
			}
		}
	}
	return deps
}
