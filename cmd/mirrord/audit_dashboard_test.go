package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestDashboardAudit: the dashboard's Audit tab lists the admin actions
// with their token's name, and a refused write of a read token.
func TestDashboardAudit(t *testing.T) {
	a := startNode(t, "")
	ro := strings.TrimSpace(strings.SplitN(a.cli(t, "token", "create", "viewer", "--scope", "read"), "\n", 2)[0])
	a.cli(t, "app", "create", "com.example.audited")
	if _, err := cliAt(a.url, ro, "app", "create", "com.example.refused"); err == nil {
		t.Fatal("a read token created an app")
	}
	b := newBrowser(t)
	b.do("open the dashboard", chromedp.Navigate(a.url+"/ui/?poll=300"))
	b.signIn(a.token, "admin")
	b.tab("audit")
	b.waitJS("the audit rows", `(() => {
		const rows = [...document.querySelectorAll("#audit-table tr")].map((r) => r.textContent);
		return rows.some((r) => r.includes("admin") && r.includes("POST /admin/v1/apps") && r.includes("201")) &&
			rows.some((r) => r.includes("viewer") && r.includes("POST /admin/v1/apps") && r.includes("403")) &&
			rows.some((r) => r.includes("admin") && r.includes("POST /admin/v1/tokens") && r.includes("201"));
	})()`)
}
