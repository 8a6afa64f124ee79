// Package toolstest holds what the tests of tools that run the mirrord
// binary share.
package toolstest
