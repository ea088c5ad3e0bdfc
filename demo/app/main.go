// Command app is the small static HTTP service that reconciler's tests and
// demo deploy. It has no dependencies beyond the standard library, so it
// builds into a single static binary that can be imported as an image
// without pulling anything.
//
// Usage:
//
//	app [serve]   HTTP server (the default)
//	app worker    no listener; logs a heartbeat every second
//	app migrate   prints "migrating" and exits with MIGRATE_EXIT (default 0)
//	app selftest  prints "selftest ok" (exit 0), or "selftest failed" and
//	              exits 1 while SELFTEST_FAIL_FILE exists (an exec smoke test)
//	app fetch URL GETs URL every FETCH_INTERVAL (20ms) from FETCH_CALLERS
//	              (2) callers, alternately on a new connection each time
//	              (so the name is resolved every time) and on a kept-alive
//	              connection, never retrying; logs each answer's version
//	              when it changes, each failure, and on SIGTERM
//	              "fetch summary ok=N failed=M"
//
// Environment:
//
//	PORT             listen port (default 8080)
//	VERSION          echoed by GET /
//	HEALTH=fail      GET /health answers 503
//	UNHEALTHY_AFTER  GET /health answers 503 once this duration has elapsed
//	UNHEALTHY_FILE   GET /health answers 503 while this file exists
//	ERROR_FILE       GET / answers 500 while this file exists
//	DELAY            GET / answers after this long
//	STARTUP_DELAY    sleep this long before listening
//	CRASH_AFTER      exit 1 after this duration (serve and worker)
//	CRASH_FILE       the worker exits 1 while this file exists
//	MIGRATE_EXIT     exit code of migrate
//
// Endpoints: GET / ("version=V host=H"), /health, /file?path=/abs (file
// content), /env?name=X (whether X is set, never its value), /envhash?name=X
// (sha256 of X's value), /slow?d=200ms (sleeps, then answers).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(0)
	mode := "serve"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "serve":
		os.Exit(serve())
	case "worker":
		os.Exit(worker())
	case "selftest":
		if exists(os.Getenv("SELFTEST_FAIL_FILE")) {
			fmt.Println("selftest failed: SELFTEST_FAIL_FILE exists")
			os.Exit(1)
		}
		fmt.Println("selftest ok")
		os.Exit(0)
	case "fetch":
		if len(os.Args) < 3 {
			log.Print("usage: app fetch URL")
			os.Exit(2)
		}
		os.Exit(fetch(os.Args[2]))
	case "migrate":
		fmt.Println(strings.TrimSpace("migrating " + strings.Join(os.Args[2:], " ")))
		code, _ := strconv.Atoi(os.Getenv("MIGRATE_EXIT"))
		os.Exit(code)
	default:
		log.Printf("unknown command %q: want serve, worker, migrate, selftest or fetch", mode)
		os.Exit(2)
	}
}

// envDuration reads a duration variable; unset or invalid means 0.
func envDuration(name string) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		log.Printf("ignoring %s=%q: %v", name, v, err)
		return 0
	}
	return d
}

// crashAfter exits 1 once CRASH_AFTER has elapsed, when it is set.
func crashAfter() {
	if d := envDuration("CRASH_AFTER"); d > 0 {
		time.AfterFunc(d, func() {
			log.Printf("crashing after %s (CRASH_AFTER)", d)
			os.Exit(1)
		})
	}
}

func worker() int {
	version := os.Getenv("VERSION")
	log.Printf("app %s worker started", version)
	crashAfter()
	if exists(os.Getenv("CRASH_FILE")) {
		log.Printf("crashing: %s exists (CRASH_FILE)", os.Getenv("CRASH_FILE"))
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if exists(os.Getenv("CRASH_FILE")) {
				log.Printf("crashing: %s exists (CRASH_FILE)", os.Getenv("CRASH_FILE"))
				return 1
			}
			log.Printf("app %s worker heartbeat", version)
		case <-sig:
			log.Printf("app %s worker stopping", version)
			return 0
		}
	}
}

func serve() int {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	version := os.Getenv("VERSION")
	host, _ := os.Hostname()
	start := time.Now()
	unhealthyAfter := envDuration("UNHEALTHY_AFTER")
	// DELAY holds every answer of / that long: a slow version, for the
	// latency gate of a bake.
	delay := envDuration("DELAY")

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		if delay > 0 {
			time.Sleep(delay)
		}
		if exists(os.Getenv("ERROR_FILE")) {
			http.Error(w, "version="+version+" failing", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "version=%s host=%s\n", version, host)
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if os.Getenv("HEALTH") == "fail" || (unhealthyAfter > 0 && time.Since(start) > unhealthyAfter) || exists(os.Getenv("UNHEALTHY_FILE")) {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		_, ok := os.LookupEnv(r.URL.Query().Get("name"))
		fmt.Fprintf(w, "%t\n", ok)
	})
	mux.HandleFunc("/envhash", func(w http.ResponseWriter, r *http.Request) {
		v, ok := os.LookupEnv(r.URL.Query().Get("name"))
		if !ok {
			http.Error(w, "not set", http.StatusNotFound)
			return
		}
		d := sha256.Sum256([]byte(v))
		fmt.Fprintln(w, hex.EncodeToString(d[:]))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil {
			http.Error(w, "want d=<duration>", http.StatusBadRequest)
			return
		}
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, "slept %s version=%s\n", d, version)
	})

	srv := &http.Server{Addr: ":" + port, Handler: logRequests(mux), ReadHeaderTimeout: 10 * time.Second}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)

	if d := envDuration("STARTUP_DELAY"); d > 0 {
		log.Printf("app %s starting in %s (STARTUP_DELAY)", version, d)
		select {
		case <-time.After(d):
		case <-sig:
			return 0
		}
	}
	crashAfter()

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("app %s listening on :%s", version, port)

	select {
	case err := <-errc:
		log.Printf("listen: %v", err)
		return 1
	case <-sig:
	}
	log.Printf("app %s shutting down", version)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Printf("shutdown: %v", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Printf("serve: %v", err)
	}
	return 0
}

// logRequests logs one line per request, except health checks, which would
// drown everything else.
func logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			log.Printf("%s %s", r.Method, r.URL.Path)
		}
		h.ServeHTTP(w, r)
	})
}

// exists reports whether path names a file; "" never does.
func exists(path string) bool {
	if path == "" {
		return false
	}
	_, err := os.Stat(path)
	return err == nil
}

// fetch is a client that calls url until SIGTERM, each time on a new
// connection, and logs what changes; the tests read its log. A failed call
// is retried once at once, as a client of an idempotent endpoint would;
// only a failed retry counts as failed.
func fetch(url string) int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	// Callers alternate: one opens a new connection per call (so the name
	// is resolved every time), the next keeps its connection alive.
	callers, _ := strconv.Atoi(os.Getenv("FETCH_CALLERS"))
	if callers <= 0 {
		callers = 2
	}
	interval := envDuration("FETCH_INTERVAL")
	if interval <= 0 {
		interval = 20 * time.Millisecond
	}
	var clients []*http.Client
	for i := range callers {
		c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: i%2 == 0}}
		clients = append(clients, c)
	}
	get := func(c *http.Client) (string, error) {
		resp, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("status %d", resp.StatusCode)
		}
		v, _, _ := strings.Cut(strings.TrimPrefix(string(b), "version="), " ")
		return v, nil
	}
	type result struct {
		v   string
		err error
	}
	results := make(chan result)
	stop := make(chan struct{})
	for _, c := range clients {
		go func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				v, err := get(c)
				select {
				case results <- result{v, err}:
				case <-stop:
					return
				}
			}
		}()
	}
	ok, failed := 0, 0
	last := ""
	for {
		var r result
		select {
		case <-sig:
			close(stop)
			log.Printf("fetch summary ok=%d failed=%d", ok, failed)
			return 0
		case r = <-results:
		}
		if r.err != nil {
			failed++
			log.Printf("fetch error: %v", r.err)
			continue
		}
		ok++
		// A line when the version changes, and every 25 calls so that a
		// watcher sees progress.
		if r.v != last || ok%25 == 0 {
			log.Printf("fetch version=%s ok=%d failed=%d", r.v, ok, failed)
			last = r.v
		}
	}
}
