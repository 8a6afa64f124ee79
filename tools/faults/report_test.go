package faults

import (
	"fmt"
	"strings"
)

// result is one row of the table.
type result struct {
	scenario string
	skipped  string // why the scenario did not run here
	noLoad   bool   // a check without devices or admin loop

	sent, answered, failed, toDown int64
	dlOK, dlFailed, wrongBytes     int64
	acked, lost                    int

	notes   []string
	broken  []string // promises broken, one sentence each
	details []string // first failures seen
}

// fill copies the counts into the row and adds a broken promise for
// each rule of the issue the counts break.
func (r *result) fill(t *tally, pt publishTally, d durability) {
	r.sent, r.answered, r.failed, r.toDown = t.sent.Load(), t.answered.Load(), t.failed.Load(), t.toDown.Load()
	r.dlOK, r.dlFailed = t.dlOK.Load(), t.dlFailed.Load()
	r.wrongBytes = t.wrongBytes.Load() + int64(len(d.wrong))
	r.acked, r.lost = pt.acked, d.newlyLost
	r.details = append(r.details, t.samples...)
	r.details = append(r.details, d.wrong...)
	r.details = append(r.details, d.lost...)

	if r.toDown > 0 {
		r.notes = append(r.notes, fmt.Sprintf("%d checks to nodes going down not counted", r.toDown))
	}
	if c, d := t.slowestCheck.get(), t.slowestDownload.get(); c > 0 || d > 0 {
		r.notes = append(r.notes, fmt.Sprintf("slowest answered check %s, slowest download %s", ms(c), ms(d)))
	}
	if r.failed > 0 {
		r.broken = append(r.broken, fmt.Sprintf("%d device checks to nodes that were up failed (%d wrong answers)", r.failed, t.wrongAnswers.Load()))
	}
	if r.wrongBytes > 0 {
		r.broken = append(r.broken, fmt.Sprintf("%d downloads served bytes other than the published ones (%d in the check after healing)", r.wrongBytes, len(d.wrong)))
	}
	if len(d.lost) > 0 {
		r.broken = append(r.broken, fmt.Sprintf("acknowledged releases not servable on every node after healing: %s", strings.Join(d.lost, "; ")))
	}
	for _, b := range pt.badAnswers {
		r.broken = append(r.broken, "acknowledged publish with a wrong answer: "+b)
	}
}

// formatTable renders the rows as a Markdown table.
func formatTable(rs []*result) string {
	var b strings.Builder
	b.WriteString("| scenario | device checks sent / answered / failed | downloads ok / failed / wrong bytes | releases acked / lost | notes |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, r := range rs {
		if r.skipped != "" {
			fmt.Fprintf(&b, "| %s | – | – | – | skipped: %s |\n", cell(r.scenario), cell(r.skipped))
			continue
		}
		notes := r.notes
		if len(r.broken) > 0 {
			notes = append([]string{fmt.Sprintf("**FAILED: %d broken promise(s)**", len(r.broken))}, notes...)
		}
		checks := fmt.Sprintf("%d / %d / %d", r.sent, r.answered, r.failed)
		downloads := fmt.Sprintf("%d / %d / %d", r.dlOK, r.dlFailed, r.wrongBytes)
		releases := fmt.Sprintf("%d / %d", r.acked, r.lost)
		if r.noLoad {
			checks, downloads, releases = "–", fmt.Sprintf("– / – / %d", r.wrongBytes), fmt.Sprintf("– / %d", r.lost)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", cell(r.scenario), checks, downloads, releases, cell(strings.Join(notes, "; ")))
	}
	return b.String()
}

// formatDetails lists the broken promises and first failures per row.
func formatDetails(rs []*result) string {
	var b strings.Builder
	for _, r := range rs {
		if len(r.broken) == 0 && len(r.details) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s:\n", r.scenario)
		for _, s := range r.broken {
			fmt.Fprintf(&b, "  BROKEN: %s\n", s)
		}
		for _, s := range r.details {
			fmt.Fprintf(&b, "  seen: %s\n", s)
		}
	}
	return b.String()
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", "/", "\n", " ").Replace(s)
}
