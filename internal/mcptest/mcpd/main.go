// Command mcpd is the MCP test server and client of the project's test
// images (see package mcptest). It has no dependencies beyond the standard
// library and the project, so it builds into a single static binary that
// can be imported as an image without pulling anything.
//
// Usage:
//
//	mcpd [serve]            the server on $PORT (default 8080), answering
//	                        with version $VERSION; SIGTERM closes it at once,
//	                        cutting open streams; with $CLOSE_CONNS=1 it
//	                        closes every connection after its answer, so
//	                        the host sees none between two requests
//	mcpd client URL FOR     the client against URL for the duration FOR
//	                        (calls every 50ms, one stream), then prints its
//	                        counts as JSON
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/developer-mesh/reconciler/internal/mcptest"
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
	case "client":
		if len(os.Args) != 4 {
			log.Print("usage: mcpd client URL DURATION")
			os.Exit(2)
		}
		os.Exit(client(os.Args[2], os.Args[3]))
	default:
		log.Printf("unknown mode %q: want serve or client", mode)
		os.Exit(2)
	}
}

func serve() int {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	var h http.Handler = mcptest.NewServer(os.Getenv("VERSION"))
	if os.Getenv("CLOSE_CONNS") == "1" {
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			next.ServeHTTP(w, r)
		})
	}
	srv := &http.Server{Addr: ":" + port, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		srv.Close()
	}()
	log.Printf("mcpd %s listening on :%s", os.Getenv("VERSION"), port)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Print(err)
		return 1
	}
	return 0
}

func client(url, dur string) int {
	d, err := time.ParseDuration(dur)
	if err != nil {
		log.Print(err)
		return 2
	}
	c := &mcptest.Client{URL: url, CallEvery: 50 * time.Millisecond}
	if err := c.Start(context.Background()); err != nil {
		log.Print(err)
		return 1
	}
	time.Sleep(d)
	b, _ := json.Marshal(c.Stop())
	fmt.Println(string(b))
	return 0
}
