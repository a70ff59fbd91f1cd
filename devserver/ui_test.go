//go:build !noui

package devserver_test

// uiBuiltIn mirrors the package's build tag: the UI checks run only when the
// Web UI is compiled in.
const uiBuiltIn = true
