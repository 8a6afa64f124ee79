// Package publish turns a bundle (a directory of web files or a zip) into
// a release on a mirrord cluster: zip, encrypt (Capgo v2) or import a zip
// the Capgo CLI encrypted, choose the session key (reusing the one of the
// app's latest release so that unchanged files keep their bytes), upload
// the objects and create the release.
//
// It talks to the admin API through Admin, which both the HTTP client
// (adminapi.Client, used by `mirrord publish`) and the in-process API
// (adminapi.Local, used by the watch folder) implement, so a release
// published either way goes through the same code and checks.
//
// This package may import content, consensus/state and node/adminapi; it
// must not import resolver, configs or cmd.
package publish
