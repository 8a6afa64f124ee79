// Package inbox is mirrord's watch folder. A bundle directory moved into
// the inbox, holding the web files and a release.yaml sidecar, is
// published once and then moved to done/ (or to failed/, with a file that
// says why).
//
// A directory is published only when it is complete:
//
//   - an atomic rename: copy it under a name that starts with "." (such
//     names are never touched), then rename it into place; or
//   - a ready marker: copy it under its final name and create the file
//     READY in it last.
//
// A visible directory without READY is taken as renamed into place when
// it already holds release.yaml the first time the watcher sees it and
// its files do not change during a short settle time. A directory first
// seen without release.yaml is being copied: it waits for READY however
// long the copy takes, so a half-copied bundle is never published.
//
// An encrypted bundle holding an empty file is published without a
// delta manifest, as `mirrord publish` does (content.ManifestRefusesEmpty):
// the log says so, and done/NAME.published.json names the files in
// empty_files with the reason in no_manifest.
//
// A bundle naming an app the cluster does not know is refused (to
// failed/, with the `mirrord app create` line to run) unless its
// release.yaml says create_app: true.
//
// Publishing is idempotent by content: a journal (a JSON file beside the
// node's data) maps the SHA-256 of each bundle's files to its release,
// written before the publish starts and after it ends. After a restart,
// a bundle already published (or published just before a crash, when
// the release exists) is moved to done/ without a second publish.
//
// Changes are watched with fsnotify (inotify on Linux); where it is not
// available the watcher polls and says so in the log.
package inbox
