// Command loadgen is a closed-loop HTTP load generator for the interop benchmarks.
//
// Each of -concurrency workers keeps one keep-alive connection and sends its next request
// as soon as the previous response has been read in full. Requests that complete during
// -warmup are discarded; afterwards, every request that both starts and completes within
// the -duration measurement window is recorded. The result is one JSON line on stdout.
//
// URL and body templates may contain:
//
//	{id}   an id from -ids (reads: spread over all ids; writes: each worker owns a disjoint slice)
//	{seq}  a value unique to this request within the run (e.g. "w3-1207")
//
// The response header "Server-Timing: store;dur=1.234, app;dur=5.6" (milliseconds), when
// present, is summed into mean_store_ms and mean_app_ms.
//
// Two marker lines go to stderr so a caller can sample CPU counters for exactly the
// measurement window: "# measure-start" and "# measure-end".
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type config struct {
	urlTemplate string
	method      string
	bodyFile    string
	contentType string
	accept      string
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	idsFile     string
	idsMode     string
	timeout     time.Duration
}

// workerStats is owned by one worker; merged after the run, so no locking on the hot path.
type workerStats struct {
	latencies  []time.Duration
	statuses   map[string]int
	errors     int
	ok         int
	storeSum   float64
	storeCount int
	appSum     float64
	appCount   int
	sample     string // first transport error or non-2xx body, for diagnostics
}

type result struct {
	Label          string         `json:"label,omitempty"`
	Method         string         `json:"method"`
	URLTemplate    string         `json:"url_template"`
	Concurrency    int            `json:"concurrency"`
	Requests       int            `json:"requests"`
	OK             int            `json:"ok"`
	Errors         int            `json:"errors"`
	ErrorsByStatus map[string]int `json:"errors_by_status"`
	Statuses       map[string]int `json:"statuses"`
	DurationS      float64        `json:"duration_s"`
	ThroughputRPS  float64        `json:"throughput_rps"`
	P50Ms          float64        `json:"p50_ms"`
	P90Ms          float64        `json:"p90_ms"`
	P95Ms          float64        `json:"p95_ms"`
	P99Ms          float64        `json:"p99_ms"`
	MaxMs          float64        `json:"max_ms"`
	MeanLatencyMs  float64        `json:"mean_latency_ms"`
	MeanStoreMs    *float64       `json:"mean_store_ms"` // null: no Server-Timing store metric (n/a)
	MeanAppMs      *float64       `json:"mean_app_ms"`   // null: no Server-Timing app metric (n/a)
	ServerTiming   string         `json:"server_timing"` // "present", "partial" or "n/a"
	LoadgenCPUS    float64        `json:"loadgen_cpu_s"`
	ErrorSample    string         `json:"error_sample,omitempty"`
}

func main() {
	var cfg config
	var label string
	flag.StringVar(&cfg.urlTemplate, "url-template", "", "request URL; may contain {id} and {seq} (required)")
	flag.StringVar(&cfg.method, "method", "GET", "HTTP method")
	flag.StringVar(&cfg.bodyFile, "body", "", "file with the request body; may contain {id} and {seq}")
	flag.StringVar(&cfg.contentType, "content-type", "application/fhir+json", "Content-Type of the request body")
	flag.StringVar(&cfg.accept, "accept", "application/fhir+json", "Accept header")
	flag.IntVar(&cfg.concurrency, "concurrency", 1, "number of closed-loop workers (one connection each)")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "measurement window")
	flag.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "warm-up before the window (not recorded)")
	flag.StringVar(&cfg.idsFile, "ids", "", "file with one id per line, substituted for {id}")
	flag.StringVar(&cfg.idsMode, "ids-mode", "auto", "spread: every worker cycles over all ids; disjoint: worker i uses ids i, i+c, ...; auto: disjoint for PUT/PATCH/DELETE, else spread")
	flag.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "per-request timeout")
	flag.StringVar(&label, "label", "", "free text copied into the output")
	flag.Parse()

	if err := validate(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	res, err := run(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	res.Label = label
	out, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}

func validate(cfg *config) error {
	if cfg.urlTemplate == "" {
		return errors.New("-url-template is required")
	}
	if cfg.concurrency < 1 {
		return errors.New("-concurrency must be at least 1")
	}
	if cfg.duration <= 0 {
		return errors.New("-duration must be positive")
	}
	if cfg.warmup < 0 {
		return errors.New("-warmup must not be negative")
	}
	cfg.method = strings.ToUpper(cfg.method)
	switch cfg.idsMode {
	case "auto":
		switch cfg.method {
		case "PUT", "PATCH", "DELETE":
			cfg.idsMode = "disjoint"
		default:
			cfg.idsMode = "spread"
		}
	case "spread", "disjoint":
	default:
		return fmt.Errorf("-ids-mode must be auto, spread or disjoint, got %q", cfg.idsMode)
	}
	return nil
}

func readIDs(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			ids = append(ids, line)
		}
	}
	return ids, sc.Err()
}

// idsFor returns the ids worker w cycles over.
func idsFor(all []string, mode string, w, workers int) []string {
	if len(all) == 0 {
		return nil
	}
	if mode == "disjoint" {
		var own []string
		for i := w; i < len(all); i += workers {
			own = append(own, all[i])
		}
		return own
	}
	// Spread: all ids, each worker starting at a different offset so they do not move in step.
	start := (w * len(all)) / workers
	return append(append([]string{}, all[start:]...), all[:start]...)
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func run(cfg config) (*result, error) {
	var body string
	if cfg.bodyFile != "" {
		raw, err := os.ReadFile(cfg.bodyFile)
		if err != nil {
			return nil, err
		}
		body = string(raw)
	}
	needsID := strings.Contains(cfg.urlTemplate, "{id}") || strings.Contains(body, "{id}")
	var ids []string
	if cfg.idsFile != "" {
		var err error
		if ids, err = readIDs(cfg.idsFile); err != nil {
			return nil, err
		}
	}
	if needsID && len(ids) == 0 {
		return nil, errors.New("the URL or body uses {id} but -ids gave no ids")
	}
	if needsID && cfg.idsMode == "disjoint" && len(ids) < cfg.concurrency {
		return nil, fmt.Errorf("disjoint ids need at least one id per worker: %d ids, %d workers", len(ids), cfg.concurrency)
	}

	transport := &http.Transport{
		Proxy:               nil, // loopback benchmarks never go through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        cfg.concurrency,
		MaxIdleConnsPerHost: cfg.concurrency,
		MaxConnsPerHost:     cfg.concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	client := &http.Client{Transport: transport, Timeout: cfg.timeout}
	defer transport.CloseIdleConnections()

	begin := time.Now()
	measureStart := begin.Add(cfg.warmup)
	measureEnd := measureStart.Add(cfg.duration)

	stats := make([]*workerStats, cfg.concurrency)
	var wg sync.WaitGroup
	for w := 0; w < cfg.concurrency; w++ {
		st := &workerStats{statuses: map[string]int{}, latencies: make([]time.Duration, 0, 4096)}
		stats[w] = st
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			worker(client, cfg, body, idsFor(ids, cfg.idsMode, w, cfg.concurrency), w, measureStart, measureEnd, st)
		}(w)
	}

	// Markers for the caller's CPU sampling, and our own CPU over the same window.
	time.Sleep(time.Until(measureStart))
	fmt.Fprintln(os.Stderr, "# measure-start")
	cpu0 := cpuSeconds()
	time.Sleep(time.Until(measureEnd))
	cpu1 := cpuSeconds()
	fmt.Fprintln(os.Stderr, "# measure-end")
	wg.Wait()

	return summarize(cfg, stats, cpu1-cpu0), nil
}

func worker(client *http.Client, cfg config, body string, ids []string, w int, measureStart, measureEnd time.Time, st *workerStats) {
	hasBody := body != ""
	bodyHasSeq := strings.Contains(body, "{seq}")
	urlHasSeq := strings.Contains(cfg.urlTemplate, "{seq}")
	buf := make([]byte, 32*1024)
	for n := 0; ; n++ {
		if !time.Now().Before(measureEnd) {
			return
		}
		url, payload := cfg.urlTemplate, body
		if len(ids) > 0 {
			id := ids[n%len(ids)]
			url = strings.ReplaceAll(url, "{id}", id)
			if hasBody {
				payload = strings.ReplaceAll(payload, "{id}", id)
			}
		}
		if urlHasSeq || bodyHasSeq {
			seq := "w" + strconv.Itoa(w) + "-" + strconv.Itoa(n)
			url = strings.ReplaceAll(url, "{seq}", seq)
			payload = strings.ReplaceAll(payload, "{seq}", seq)
		}
		var reader io.Reader
		if hasBody {
			reader = strings.NewReader(payload)
		}
		req, err := http.NewRequest(cfg.method, url, reader)
		if err != nil {
			st.record(false, "request-error", 0, nil, err.Error(), measureStart, measureEnd, time.Now(), time.Now())
			return
		}
		if hasBody {
			req.Header.Set("Content-Type", cfg.contentType)
		}
		if cfg.accept != "" {
			req.Header.Set("Accept", cfg.accept)
		}

		started := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			st.record(false, "transport", 0, nil, err.Error(), measureStart, measureEnd, started, time.Now())
			// Do not spin on a dead server.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		ok := resp.StatusCode >= 200 && resp.StatusCode < 300
		var sample string
		if !ok && st.sample == "" {
			head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			sample = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(head))
		}
		_, copyErr := io.CopyBuffer(io.Discard, resp.Body, buf)
		resp.Body.Close()
		finished := time.Now()
		if copyErr != nil {
			st.record(false, "transport", 0, nil, copyErr.Error(), measureStart, measureEnd, started, finished)
			continue
		}
		st.record(ok, strconv.Itoa(resp.StatusCode), resp.StatusCode, resp.Header, sample, measureStart, measureEnd, started, finished)
	}
}

func (st *workerStats) record(ok bool, status string, code int, header http.Header, sample string,
	measureStart, measureEnd, started, finished time.Time) {
	if started.Before(measureStart) || finished.After(measureEnd) {
		return // warm-up, or straddles the end of the window
	}
	st.latencies = append(st.latencies, finished.Sub(started))
	st.statuses[status]++
	if ok {
		st.ok++
	} else {
		st.errors++
		if st.sample == "" && sample != "" {
			st.sample = sample
		}
	}
	if header == nil {
		return
	}
	for _, v := range header.Values("Server-Timing") {
		for name, dur := range parseServerTiming(v) {
			switch name {
			case "store":
				st.storeSum += dur
				st.storeCount++
			case "app":
				st.appSum += dur
				st.appCount++
			}
		}
	}
}

// parseServerTiming reads "store;dur=1.234, app;dur=5.6" into {"store": 1.234, "app": 5.6}.
// Metrics without a dur parameter are ignored.
func parseServerTiming(value string) map[string]float64 {
	out := map[string]float64{}
	for _, metric := range strings.Split(value, ",") {
		parts := strings.Split(metric, ";")
		name := strings.TrimSpace(parts[0])
		if name == "" {
			continue
		}
		for _, p := range parts[1:] {
			k, v, found := strings.Cut(strings.TrimSpace(p), "=")
			if !found || strings.TrimSpace(k) != "dur" {
				continue
			}
			if f, err := strconv.ParseFloat(strings.Trim(strings.TrimSpace(v), `"`), 64); err == nil {
				out[name] += f
			}
		}
	}
	return out
}

func summarize(cfg config, stats []*workerStats, loadgenCPU float64) *result {
	res := &result{
		Method:         cfg.method,
		URLTemplate:    cfg.urlTemplate,
		Concurrency:    cfg.concurrency,
		ErrorsByStatus: map[string]int{},
		Statuses:       map[string]int{},
		DurationS:      cfg.duration.Seconds(),
		LoadgenCPUS:    round(loadgenCPU, 3),
	}
	var all []time.Duration
	var storeSum, appSum float64
	var storeCount, appCount int
	for _, st := range stats {
		all = append(all, st.latencies...)
		res.OK += st.ok
		res.Errors += st.errors
		storeSum += st.storeSum
		storeCount += st.storeCount
		appSum += st.appSum
		appCount += st.appCount
		for k, v := range st.statuses {
			res.Statuses[k] += v
		}
		if res.ErrorSample == "" {
			res.ErrorSample = st.sample
		}
	}
	res.Requests = len(all)
	for k, v := range res.Statuses {
		if code, err := strconv.Atoi(k); err != nil || code < 200 || code >= 300 {
			res.ErrorsByStatus[k] = v
		}
	}
	// Throughput counts successful responses only, so a fast-failing server does not look fast.
	res.ThroughputRPS = round(float64(res.OK)/cfg.duration.Seconds(), 1)
	if len(all) > 0 {
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		var sum time.Duration
		for _, d := range all {
			sum += d
		}
		res.P50Ms = ms(percentile(all, 50))
		res.P90Ms = ms(percentile(all, 90))
		res.P95Ms = ms(percentile(all, 95))
		res.P99Ms = ms(percentile(all, 99))
		res.MaxMs = ms(all[len(all)-1])
		res.MeanLatencyMs = round(float64(sum)/float64(len(all))/1e6, 3)
	}
	switch {
	case storeCount == 0:
		res.ServerTiming = "n/a"
	case storeCount < len(all):
		res.ServerTiming = "partial"
	default:
		res.ServerTiming = "present"
	}
	if storeCount > 0 {
		v := round(storeSum/float64(storeCount), 3)
		res.MeanStoreMs = &v
	}
	if appCount > 0 {
		v := round(appSum/float64(appCount), 3)
		res.MeanAppMs = &v
	}
	return res
}

// percentile uses the nearest-rank method on sorted data.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func ms(d time.Duration) float64 { return round(float64(d)/1e6, 3) }

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}
