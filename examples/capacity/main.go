// Command capacity answers "how many GPUs for N concurrent players at this
// SLO?" with the batching simulator: for each player count it finds the
// fewest simulated H200 replicas whose requests meet the SLO, prints a
// table, and plots TTFT p99 and goodput against players for a few replica
// counts.
//
//	go run ./examples/capacity -players 1000,5000,10000,20000 -plot capacity.png
//
// The figures come from batching/sim's step model, fitted to step times
// measured on one H200 with PyTorch (not a serving engine's kernels), for
// a Llama-3.1-8B-shaped model. Read them as a first estimate to confirm
// on real hardware, not as a quote.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bodybroker/sdk/batching/sim"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "capacity:", err)
		}
		os.Exit(2)
	}
}

type config struct {
	players   []int
	curves    []int // replica counts plotted
	maxGPUs   int
	slo       sim.SLO
	target    float64 // share of requests that must meet the SLO
	duration  time.Duration
	routing   sim.Routing
	plotPath  string
	seed      uint64
	noBar     bool
	perPlayer float64
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func parse(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("capacity", flag.ContinueOnError)
	fs.SetOutput(stderr)
	players := fs.String("players", "1000,5000,10000,20000,40000", "comma-separated concurrent player counts")
	curves := fs.String("curves", "1,2,4,8", "comma-separated replica counts to plot")
	maxGPUs := fs.Int("max-gpus", 64, "largest replica count to try")
	ttft := fs.Duration("ttft", sim.DefaultSLO.TTFT, "time-to-first-token SLO")
	itl := fs.Duration("itl", sim.DefaultSLO.ITL, "mean inter-token latency SLO")
	target := fs.Float64("target", 0.99, "share of requests that must meet the SLO")
	duration := fs.Duration("duration", 5*time.Minute, "simulated time per point")
	routing := fs.String("routing", "session", "routing: session, persona, least-loaded or round-robin")
	plotPath := fs.String("plot", "capacity.png", "where to write the plot (.png, .svg or .pdf); empty: no plot")
	rate := fs.Float64("conversations", 30, "conversations each player starts per hour")
	seed := fs.Uint64("seed", 1, "workload seed")
	noBar := fs.Bool("no-progress", false, "do not draw the progress bar")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	c := config{maxGPUs: *maxGPUs, slo: sim.SLO{TTFT: *ttft, ITL: *itl}, target: *target, duration: *duration,
		plotPath: *plotPath, seed: *seed, noBar: *noBar, perPlayer: *rate}
	var err error
	if c.players, err = parseInts(*players); err != nil {
		return c, fmt.Errorf("-players: %w", err)
	}
	if c.curves, err = parseInts(*curves); err != nil {
		return c, fmt.Errorf("-curves: %w", err)
	}
	switch {
	case c.maxGPUs < 1:
		return c, errors.New("-max-gpus must be at least 1")
	case c.target <= 0 || c.target > 1:
		return c, errors.New("-target must be in (0, 1]")
	case c.duration <= 0 || c.slo.TTFT <= 0 || c.slo.ITL <= 0 || c.perPlayer <= 0:
		return c, errors.New("-duration, -ttft, -itl and -conversations must be positive")
	}
	found := false
	for _, r := range []sim.Routing{sim.RouteLeastLoaded, sim.RouteSession, sim.RoutePersona, sim.RouteRoundRobin} {
		if r.String() == *routing {
			c.routing, found = r, true
		}
	}
	if !found {
		return c, fmt.Errorf("-routing %q: want session, persona, least-loaded or round-robin", *routing)
	}
	return c, nil
}

// planner runs simulations, remembering each (players, replicas) point.
type planner struct {
	c     config
	cache map[[2]int]*sim.Report
	bar   *progress
}

func (p *planner) point(ctx context.Context, players, gpus int) (*sim.Report, error) {
	if r, ok := p.cache[[2]int{players, gpus}]; ok {
		return r, nil
	}
	reqs, err := sim.Workload{Players: players, Duration: p.c.duration, ConversationsPerPlayerHour: p.c.perPlayer, Seed: p.c.seed}.Requests()
	if err != nil {
		return nil, err
	}
	rep, err := sim.Run(ctx, sim.Options{Replicas: gpus, Routing: p.c.routing, SLO: p.c.slo}, reqs)
	if err != nil {
		return nil, err
	}
	p.cache[[2]int{players, gpus}] = rep
	p.bar.add(1)
	return rep, nil
}

func (p *planner) meets(r *sim.Report) bool { return r.SLOAttainment >= p.c.target }

// fewest finds the fewest replicas meeting the SLO, doubling from lo and
// then bisecting; 0 when even maxGPUs do not.
func (p *planner) fewest(ctx context.Context, players, lo int) (int, error) {
	hi := max(lo, 1)
	for {
		r, err := p.point(ctx, players, hi)
		if err != nil {
			return 0, err
		}
		if p.meets(r) {
			break
		}
		if hi >= p.c.maxGPUs {
			return 0, nil
		}
		lo, hi = hi+1, min(2*hi, p.c.maxGPUs)
	}
	for lo < hi {
		mid := (lo + hi) / 2
		r, err := p.point(ctx, players, mid)
		if err != nil {
			return 0, err
		}
		if p.meets(r) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return hi, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parse(args, stderr)
	if err != nil {
		return err
	}
	// The curves' points are known; the search adds a few more, so the
	// bar's total grows as it goes.
	bar := &progress{w: stderr, total: len(c.players) * len(c.curves), off: c.noBar}
	p := &planner{c: c, cache: map[[2]int]*sim.Report{}, bar: bar}
	for _, n := range c.players {
		for _, g := range c.curves {
			if _, err := p.point(ctx, n, g); err != nil {
				return err
			}
		}
	}
	type row struct {
		players, gpus int
		rep           *sim.Report
	}
	var rows []row
	prev := 1
	for _, n := range c.players {
		bar.total += 3 // a guess at the search's extra points
		g, err := p.fewest(ctx, n, prev)
		if err != nil {
			return err
		}
		r := row{players: n, gpus: g}
		if g > 0 {
			r.rep, prev = p.cache[[2]int{n, g}], g
		}
		rows = append(rows, r)
	}
	bar.done()

	fmt.Fprintf(stdout, "SLO: TTFT ≤ %v and mean ITL ≤ %v for %.1f%% of requests; %v simulated per point, %s routing, H200 step model (Llama-3.1-8B shape)\n\n",
		c.slo.TTFT, c.slo.ITL, 100*c.target, c.duration, c.routing)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "players\tGPUs\treq/s\tTTFT p50\tTTFT p99\tITL p99\tE2E p99\tgoodput req/s\tSLO met\tprefix hit\t")
	for _, r := range rows {
		if r.rep == nil {
			fmt.Fprintf(tw, "%d\t> %d\t\t\t\t\t\t\t\t\t\n", r.players, c.maxGPUs)
			continue
		}
		rep := r.rep
		secs := rep.Duration.Seconds()
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%v\t%v\t%v\t%v\t%.1f\t%.2f%%\t%.0f%%\t\n", r.players, r.gpus,
			float64(rep.Completed)/secs, rep.TTFT.P50.Round(time.Millisecond), rep.TTFT.P99.Round(time.Millisecond),
			rep.ITL.P99.Round(100*time.Microsecond), rep.E2E.P99.Round(time.Millisecond), rep.Goodput,
			100*rep.SLOAttainment, 100*rep.PrefixCacheHitRate)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if c.plotPath == "" {
		return nil
	}
	if err := writePlot(c, p.cache); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nplot: %s\n", c.plotPath)
	return nil
}

// writePlot draws TTFT p99 (log scale) and goodput against players, one
// line per replica count in c.curves, one panel above the other.
func writePlot(c config, cache map[[2]int]*sim.Report) error {
	ttft, good := plot.New(), plot.New()
	ttft.Title.Text = "TTFT p99 against players (simulated H200s)"
	ttft.X.Label.Text, ttft.Y.Label.Text = "concurrent players", "TTFT p99 (s)"
	ttft.Y.Scale, ttft.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	good.Title.Text = "goodput under SLO against players"
	good.X.Label.Text, good.Y.Label.Text = "concurrent players", "requests/s meeting the SLO"
	for i, g := range c.curves {
		var pt, pg plotter.XYs
		for _, n := range c.players {
			r := cache[[2]int{n, g}]
			pt = append(pt, plotter.XY{X: float64(n), Y: max(r.TTFT.P99.Seconds(), 1e-3)})
			pg = append(pg, plotter.XY{X: float64(n), Y: r.Goodput})
		}
		name := fmt.Sprintf("%d GPU", g)
		if g > 1 {
			name += "s"
		}
		for _, pl := range []struct {
			p   *plot.Plot
			xys plotter.XYs
		}{{ttft, pt}, {good, pg}} {
			l, s, err := plotter.NewLinePoints(pl.xys)
			if err != nil {
				return err
			}
			l.Color, s.Color = plotutil.Color(i), plotutil.Color(i)
			s.Shape = plotutil.Shape(i)
			pl.p.Add(l, s)
			pl.p.Legend.Add(name, l, s)
		}
	}
	sloLine := plotter.NewFunction(func(float64) float64 { return c.slo.TTFT.Seconds() })
	sloLine.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
	ttft.Add(sloLine)
	ttft.Legend.Add("TTFT SLO", sloLine)
	ttft.Legend.Top, ttft.Legend.Left = true, true
	good.Legend.Top, good.Legend.Left = true, true

	const w, h = 8 * vg.Inch, 9 * vg.Inch
	img, err := draw.NewFormattedCanvas(w, h, formatOf(c.plotPath))
	if err != nil {
		return err
	}
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(8), PadBottom: vg.Points(8), PadX: vg.Points(8), PadY: vg.Points(16)}
	canvases := plot.Align([][]*plot.Plot{{ttft}, {good}}, tiles, dc)
	ttft.Draw(canvases[0][0])
	good.Draw(canvases[1][0])
	f, err := os.Create(c.plotPath)
	if err != nil {
		return err
	}
	if _, err := img.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func formatOf(path string) string {
	for _, ext := range []string{"svg", "pdf", "png"} {
		if strings.HasSuffix(strings.ToLower(path), "."+ext) {
			return ext
		}
	}
	return "png"
}

// progress draws a one-line progress bar on a terminal-like writer.
type progress struct {
	w          io.Writer
	n, total   int
	off, drawn bool
	start      time.Time
}

func (p *progress) add(n int) {
	if p.start.IsZero() {
		p.start = time.Now()
	}
	p.n += n
	p.total = max(p.total, p.n)
	if p.off {
		return
	}
	const width = 30
	fill := width * p.n / p.total
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d simulations  %v ", strings.Repeat("#", fill), strings.Repeat(".", width-fill),
		p.n, p.total, time.Since(p.start).Round(time.Second))
	p.drawn = true
}

func (p *progress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
