package server

import (
	"fmt"
	"math"
	"strings"
)

// Charts: inline SVG laid out here, drawn by the templates.

const (
	chartW, chartH         = 320.0, 170.0
	padL, padR, padT, padB = 58.0, 12.0, 12.0, 30.0
	plotW, plotH           = chartW - padL - padR, chartH - padT - padB
	markSize               = 5.0
)

type point struct {
	X, Y  float64
	Label string
	Mark  bool // a shrink warning
}

type series struct {
	Name, Class string
	Points      []point
}

// chart is a laid-out line chart: coordinates in the SVG's viewBox.
type chart struct {
	ID, Title, Desc string
	W, H            float64
	Left, Right     float64
	Top, Bottom     float64
	XLabels         [2]string
	XTitle          string
	YLabelX         float64
	XLabelY         float64
	XTitleX         float64
	YTicks          []tick
	Lines           []line
	Marks           int

	series []series
	yfmt   func(float64) string
	xMin   float64
	xMax   float64
	yMax   float64
}

type tick struct {
	Y     float64
	Label string
}

type line struct {
	Name, Class string
	Path        string
	Dots        []dot
}

type dot struct {
	X, Y  float64
	Label string
	Mark  bool
	// Tri is the triangle drawn around a marked point.
	Tri string
}

func newChart(id, title, desc, xTitle string, xLabels [2]string, yfmt func(float64) string, ss ...series) chart {
	c := chart{ID: id, Title: title, Desc: desc, W: chartW, H: chartH, Left: padL, Right: chartW - padR, Top: padT, Bottom: chartH - padB,
		XLabels: xLabels, XTitle: xTitle, YLabelX: padL - 4, XLabelY: chartH - padB + 16, XTitleX: padL + plotW/2,
		series: ss, yfmt: yfmt, xMin: math.Inf(1), xMax: math.Inf(-1)}
	for _, s := range ss {
		for _, p := range s.Points {
			c.xMin, c.xMax, c.yMax = min(c.xMin, p.X), max(c.xMax, p.X), max(c.yMax, p.Y)
		}
	}
	c.layout()
	return c
}

// xRange sets the x axis to span lo to hi.
func (c *chart) xRange(lo, hi float64) {
	c.xMin, c.xMax = lo, hi
	c.layout()
}

// minYMax makes the y axis reach at least v (100% on a progress chart).
func (c *chart) minYMax(v float64) {
	if c.yMax < v {
		c.yMax = v
		c.layout()
	}
}

func (c *chart) layout() {
	top := niceCeil(c.yMax)
	c.YTicks = nil
	for i := 0; i <= 2; i++ {
		v := top * float64(i) / 2
		c.YTicks = append(c.YTicks, tick{Y: c.y(v, top), Label: c.yfmt(v)})
	}
	c.Lines, c.Marks = nil, 0
	for _, s := range c.series {
		l := line{Name: s.Name, Class: s.Class}
		var path strings.Builder
		for i, p := range s.Points {
			d := dot{X: round1(c.x(p.X)), Y: round1(c.y(p.Y, top)), Label: p.Label, Mark: p.Mark}
			if p.Mark {
				c.Marks++
				d.Tri = fmt.Sprintf("%.1f,%.1f %.1f,%.1f %.1f,%.1f", d.X, d.Y-2*markSize, d.X-markSize*1.7, d.Y+markSize, d.X+markSize*1.7, d.Y+markSize)
			}
			if i == 0 {
				fmt.Fprintf(&path, "M%.1f %.1f", d.X, d.Y)
			} else {
				fmt.Fprintf(&path, " L%.1f %.1f", d.X, d.Y)
			}
			l.Dots = append(l.Dots, d)
		}
		l.Path = path.String()
		c.Lines = append(c.Lines, l)
	}
}

func (c *chart) x(v float64) float64 {
	if c.xMax <= c.xMin {
		return padL + plotW/2 // one point: in the middle
	}
	return padL + plotW*(v-c.xMin)/(c.xMax-c.xMin)
}

func (c *chart) y(v, top float64) float64 {
	if top <= 0 {
		return padT + plotH
	}
	return padT + plotH*(1-v/top)
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// niceCeil is the smallest 1, 2, 2.5 or 5 times a power of ten at or above v.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
