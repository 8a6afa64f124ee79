package state

import "testing"

func TestJudgeEvent(t *testing.T) {
	for _, tc := range []struct {
		name      string
		seen      bool
		marks     DeviceMarks
		action    string
		want      EventVerdict
		wantMarks DeviceMarks
	}{
		{"never checked in: a failure", false, 0, "update_fail", VerdictUnverified, 0},
		{"never checked in: an install", false, 0, "set", VerdictUnverified, 0},
		{"never checked in: any action", false, 0, "app_moved_to_foreground", VerdictUnverified, 0},
		{"first failure", true, 0, "update_fail", VerdictCounted, MarkFailure},
		{"launch timeout is a failure", true, 0, "app_launch_timeout", VerdictCounted, MarkFailure},
		{"second failure, same action", true, MarkFailure, "update_fail", VerdictDuplicate, MarkFailure},
		{"second failure, other action", true, MarkFailure, "download_fail", VerdictDuplicate, MarkFailure},
		{"first install", true, 0, "set", VerdictCounted, MarkInstall},
		{"second install", true, MarkInstall, "set", VerdictDuplicate, MarkInstall},
		{"failure after install (a bad bundle)", true, MarkInstall, "update_fail", VerdictCounted, MarkInstall | MarkFailure},
		{"install after failure (a retry worked)", true, MarkFailure, "set", VerdictCounted, MarkFailure | MarkInstall},
		{"download", true, MarkInstall, "download_complete", VerdictCounted, MarkInstall | MarkDownload},
		{"second download", true, MarkDownload, "download_complete", VerdictDuplicate, MarkDownload},
		{"an action not counted", true, AllMarks, "app_moved_to_foreground", VerdictNotCounted, AllMarks},
		{"an action not counted, no marks", true, 0, "get", VerdictNotCounted, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, m := JudgeEvent(tc.seen, tc.marks, tc.action)
			if v != tc.want || m != tc.wantMarks {
				t.Fatalf("JudgeEvent(%v, %b, %q) = %v, %b; want %v, %b", tc.seen, tc.marks, tc.action, v, m, tc.want, tc.wantMarks)
			}
		})
	}
}
