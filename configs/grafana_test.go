package configs

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// grafanaPanel is the part of a Grafana panel the test reads.
type grafanaPanel struct {
	ID         int               `json:"id"`
	Type       string            `json:"type"`
	Title      string            `json:"title"`
	Datasource *grafanaSource    `json:"datasource"`
	Targets    []grafanaTarget   `json:"targets"`
	Panels     []json.RawMessage `json:"panels"`
}

type grafanaSource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaTarget struct {
	Expr       string         `json:"expr"`
	Datasource *grafanaSource `json:"datasource"`
}

// selectorRe finds the metric name of each vector selector: PromQL
// selects series as name{...}. The dashboard writes every selector with
// braces (at least the instance matcher), so this finds them all; the
// second check below makes sure no bare name slips through.
var selectorRe = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\{`)

var (
	// selectorWithLabelsRe is a whole selector, name{matchers}.
	selectorWithLabelsRe = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*\{[^}]*\}`)
	identRe              = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// TestGrafanaDashboard checks configs/grafana-dashboard.json: valid
// JSON, importable (a ${DS_PROMETHEUS} input used by every panel), and
// every metric its queries select is one of mirrord's. That each one is
// really served is checked against a live node in cmd/mirrord
// (TestMetricsEndpoint).
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Inputs []struct {
			Name     string `json:"name"`
			PluginID string `json:"pluginId"`
		} `json:"__inputs"`
		SchemaVersion int            `json:"schemaVersion"`
		Title         string         `json:"title"`
		UID           string         `json:"uid"`
		Panels        []grafanaPanel `json:"panels"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("grafana-dashboard.json is not valid JSON: %v", err)
	}
	if len(doc.Inputs) != 1 || doc.Inputs[0].Name != "DS_PROMETHEUS" || doc.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs = %+v, want one prometheus datasource input DS_PROMETHEUS", doc.Inputs)
	}
	if doc.SchemaVersion < 36 || doc.Title == "" || doc.UID == "" {
		t.Errorf("schemaVersion %d, title %q, uid %q", doc.SchemaVersion, doc.Title, doc.UID)
	}
	ids := map[int]bool{}
	queries := 0
	for _, p := range doc.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if len(p.Panels) > 0 {
			t.Errorf("row %q is collapsed (its panels would escape this test); keep rows open", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("panel %q: datasource %+v, want uid ${DS_PROMETHEUS}", p.Title, p.Datasource)
		}
		for _, tg := range p.Targets {
			queries++
			if tg.Datasource == nil || tg.Datasource.UID != "${DS_PROMETHEUS}" {
				t.Errorf("panel %q: a query's datasource is %+v", p.Title, tg.Datasource)
			}
			names := selectorRe.FindAllStringSubmatch(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q selects no metric with {...}", p.Title, tg.Expr)
			}
			for _, m := range names {
				if !strings.HasPrefix(m[1], "mirrord_") {
					t.Errorf("panel %q: query %q uses %s, which is not a mirrord_ metric", p.Title, tg.Expr, m[1])
				}
			}
			// A mirrord_ name left once the selectors are gone is a
			// selector without braces, which the check above missed.
			rest := selectorWithLabelsRe.ReplaceAllString(tg.Expr, "")
			for _, w := range identRe.FindAllString(rest, -1) {
				if strings.HasPrefix(w, "mirrord_") {
					t.Errorf("panel %q: query %q selects %s without braces", p.Title, tg.Expr, w)
				}
			}
		}
	}
	if queries < 15 {
		t.Errorf("only %d queries in the dashboard", queries)
	}
}
