// Package buildinfo says which Herald this is.
package buildinfo

// Version is set at build time with -ldflags "-X .../buildinfo.Version=v1.2.3".
var Version = "0.1.0-dev"
