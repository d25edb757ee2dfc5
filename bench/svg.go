package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// chart is one SVG chart: either lines (series of x,y points) or a
// distribution per tool (boxes of samples). Axes may be logarithmic.
type chart struct {
	file, title    string
	xLabel, yLabel string
	logX, logY     bool
	series         []series
	boxes          []box
}

type series struct {
	name   string
	points [][2]float64
}

type box struct {
	name    string
	samples []float64
}

const (
	chartW, chartH = 960, 420
	padL, padR     = 80, 330
	padT, padB     = 40, 50
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

// axis maps values to pixels, linearly or on a log10 scale.
type axis struct {
	lo, hi   float64
	log      bool
	from, to float64
}

func newAxis(vals []float64, log bool, from, to float64) axis {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		if log && v <= 0 {
			continue
		}
		lo, hi = min(lo, v), max(hi, v)
	}
	if math.IsInf(lo, 0) {
		lo, hi = 1, 10
	}
	if log {
		lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	} else {
		lo = min(lo, 0)
	}
	if hi <= lo {
		hi = lo + 1
	}
	return axis{lo: lo, hi: hi, log: log, from: from, to: to}
}

func (a axis) pos(v float64) float64 {
	f := (v - a.lo) / (a.hi - a.lo)
	if a.log {
		f = (math.Log10(max(v, a.lo)) - math.Log10(a.lo)) / (math.Log10(a.hi) - math.Log10(a.lo))
	}
	return a.from + f*(a.to-a.from)
}

func (a axis) ticks() []float64 {
	var t []float64
	if a.log {
		for v := a.lo; v <= a.hi*1.0001; v *= 10 {
			t = append(t, v)
		}
		return t
	}
	for i := 0; i <= 5; i++ {
		t = append(t, a.lo+float64(i)*(a.hi-a.lo)/5)
	}
	return t
}

func (c chart) svg() string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", chartW, chartH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", padL, esc(c.title))
	if len(c.boxes) > 0 {
		c.drawBoxes(&b)
	} else {
		c.drawLines(&b)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func (c chart) yAxis(b *strings.Builder, vals []float64) axis {
	y := newAxis(vals, c.logY, chartH-padB, padT)
	for _, t := range y.ticks() {
		p := y.pos(t)
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			padL, chartW-padR, p, p, padL-6, p+4, shortNum(t))
	}
	fmt.Fprintf(b, `<text transform="translate(16,%d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", chartH/2, esc(c.yLabel))
	return y
}

func (c chart) drawLines(b *strings.Builder) {
	var xs, ys []float64
	for _, s := range c.series {
		for _, p := range s.points {
			xs, ys = append(xs, p[0]), append(ys, p[1])
		}
	}
	y := c.yAxis(b, ys)
	x := newAxis(xs, c.logX, padL, chartW-padR)
	for _, t := range x.ticks() {
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x.pos(t), chartH-padB+16, shortNum(t))
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", (padL+chartW-padR)/2, chartH-12, esc(c.xLabel))
	for i, s := range c.series {
		color := palette[i%len(palette)]
		var pts []string
		for _, p := range s.points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x.pos(p[0]), y.pos(p[1])))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		for _, p := range pts {
			xy := strings.Split(p, ",")
			fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", xy[0], xy[1], color)
		}
		legend(b, i, s.name, color)
	}
}

func legend(b *strings.Builder, i int, name, color string) {
	ly := padT + 10 + i*18
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
		chartW-padR+10, ly-10, color, chartW-padR+28, ly, esc(name))
}

// drawBoxes draws, per tool, every sample as a dot and the min–max range
// with the median marked.
func (c chart) drawBoxes(b *strings.Builder) {
	var all []float64
	for _, bx := range c.boxes {
		all = append(all, bx.samples...)
	}
	y := c.yAxis(b, all)
	step := float64(chartW-padL-padR) / float64(len(c.boxes))
	for i, bx := range c.boxes {
		color := palette[i%len(palette)]
		cx := float64(padL) + step*(float64(i)+0.5)
		s := slices.Clone(bx.samples)
		slices.Sort(s)
		if len(s) == 0 {
			continue
		}
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s"/>`+"\n", cx, cx, y.pos(s[0]), y.pos(s[len(s)-1]), color)
		q1, med, q3 := quantile(s, 0.25), quantile(s, 0.5), quantile(s, 0.75)
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="24" height="%.1f" fill="%s" fill-opacity="0.3" stroke="%s"/>`+"\n",
			cx-12, y.pos(q3), math.Max(1, y.pos(q1)-y.pos(q3)), color, color)
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="black" stroke-width="2"/>`+"\n", cx-14, cx+14, y.pos(med), y.pos(med))
		for j, v := range s {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="1.5" fill="%s"/>`+"\n", cx+18+float64(j%5)*2, y.pos(v), color)
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", cx, chartH-padB+16, esc(bx.name))
	}
}

func shortNum(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 1e9:
		return fmt.Sprintf("%.3gG", v/1e9)
	case a >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case a >= 1e3:
		return fmt.Sprintf("%.3gk", v/1e3)
	case a < 1e-3:
		return fmt.Sprintf("%.3gµ", v*1e6)
	case a < 1:
		return fmt.Sprintf("%.3gm", v*1e3)
	}
	return fmt.Sprintf("%.3g", v)
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
