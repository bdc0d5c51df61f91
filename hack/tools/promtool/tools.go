//go:build tools

// Package tools pins promtool, which hack/tools/install builds from this module (for
// hack/check-alerts) to test the chart's PrometheusRule.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
