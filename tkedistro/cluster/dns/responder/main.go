// Command tkedistro-dns is a small cluster DNS responder for tkedistro's local clusters:
// the records of the Kubernetes DNS-Based Service Discovery spec for one zone, from
// Service and Endpoints informers (or, as a test mode, from a YAML file), and every other
// question forwarded to the nameservers of its own resolv.conf. Built from the Kubernetes
// tree's vendored miekg/dns and client-go.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// version is stamped at build time (-ldflags "-X main.version=...").
var version = "dev"

type options struct {
	domain, kubeconfig, static, resolvConf, reverseCIDRs string
	port, healthPort                                     int
	ttl                                                  uint
	showVersion                                          bool
}

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("tkedistro-dns", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.domain, "domain", "cluster.local", "the cluster DNS zone")
	fs.IntVar(&o.port, "port", 53, "DNS port (UDP and TCP)")
	fs.IntVar(&o.healthPort, "health-port", 8080, "HTTP port of /healthz and /ready (0: none)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config)")
	fs.StringVar(&o.static, "static", "", "TEST MODE: serve the Services and Endpoints of this YAML file instead of watching the API")
	fs.StringVar(&o.resolvConf, "resolv-conf", "/etc/resolv.conf", "upstream nameservers for names outside the zone")
	fs.StringVar(&o.reverseCIDRs, "reverse-cidrs", "10.96.0.0/12,10.244.0.0/16",
		"comma-separated CIDRs whose reverse names are answered here (NXDOMAIN when unknown)")
	fs.UintVar(&o.ttl, "ttl", 5, "TTL of every record, seconds")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	return o, fs.Parse(args)
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if err == flag.ErrHelp {
		os.Exit(0)
	} else if err != nil {
		os.Exit(2)
	}
	if opts.showVersion {
		fmt.Println("tkedistro-dns", version)
		return
	}
	if err := serve(opts); err != nil {
		log.Fatalf("tkedistro-dns: %v", err)
	}
}

func serve(opts options) error {
	nets, err := parseCIDRs(opts.reverseCIDRs)
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	src, err := openSource(opts, stop)
	if err != nil {
		return err
	}
	zone := dns.Fqdn(strings.ToLower(opts.domain))
	handler := &Handler{
		Records: &Records{Zone: zone, TTL: uint32(opts.ttl), Services: src.services,
			Endpoints: src.endpoints},
		ReverseNets: nets, Upstreams: upstreams(opts.resolvConf), Timeout: 2 * time.Second,
	}
	var listening int32
	errs := make(chan error, 3)
	addr := net.JoinHostPort("", strconv.Itoa(opts.port))
	for _, proto := range []string{"udp", "tcp"} {
		server := &dns.Server{Addr: addr, Net: proto, Handler: handler,
			NotifyStartedFunc: func() { atomic.AddInt32(&listening, 1) }}
		go func() { errs <- server.ListenAndServe() }()
	}
	if opts.healthPort > 0 {
		ready := func() bool { return atomic.LoadInt32(&listening) == 2 && src.synced() }
		go func() {
			errs <- http.ListenAndServe(net.JoinHostPort("", strconv.Itoa(opts.healthPort)), health(ready))
		}()
	}
	log.Printf("tkedistro-dns %s: zone %s on port %d (udp, tcp) from %s, reverse %s, upstreams %v, health port %d",
		version, zone, opts.port, src.origin, opts.reverseCIDRs, handler.Upstreams, opts.healthPort)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-errs:
		return err
	case <-signals:
		close(stop)
		return nil
	}
}

func health(ready func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			http.Error(w, "not ready: caches not synced or not listening", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	return mux
}

func parseCIDRs(text string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, s := range strings.Split(text, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("--reverse-cidrs: %v", err)
		}
		out = append(out, n)
	}
	return out, nil
}

// upstreams are the nameservers of resolv.conf as "ip:port"; none when it cannot be read.
func upstreams(path string) []string {
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil {
		log.Printf("no upstream nameservers (%v): names outside the zone get SERVFAIL", err)
		return nil
	}
	var out []string
	for _, server := range cfg.Servers {
		out = append(out, net.JoinHostPort(server, cfg.Port))
	}
	return out
}
