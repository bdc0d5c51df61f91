//go:build tools

// Package tools pins promtool, which hack/check-alerts builds from this module to test
// the chart's PrometheusRule (`promtool check rules`, `promtool test rules`).
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
