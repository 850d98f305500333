package main

import (
	"net"
	"strconv"
	"strings"

	"github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/labels"
)

// reverseIP parses a full in-addr.arpa or ip6.arpa name; nil for anything else.
func reverseIP(name string) net.IP {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if rest := strings.TrimSuffix(name, ".in-addr.arpa"); rest != name {
		parts := strings.Split(rest, ".")
		if len(parts) != 4 {
			return nil
		}
		for i, j := 0, 3; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
		return net.ParseIP(strings.Join(parts, ".")).To4()
	}
	if rest := strings.TrimSuffix(name, ".ip6.arpa"); rest != name {
		nibbles := strings.Split(rest, ".")
		if len(nibbles) != 32 {
			return nil
		}
		ip := make(net.IP, 16)
		for i, n := range nibbles {
			v, err := strconv.ParseUint(n, 16, 8)
			if err != nil || len(n) != 1 {
				return nil
			}
			pos := 31 - i
			ip[pos/2] |= byte(v) << (4 * uint(1-pos%2))
		}
		return ip
	}
	return nil
}

// PTR answers the reverse name of ip: each Service with that cluster IP and each
// endpoint with a hostname of a headless Service at that IP. Nil when none.
func (r *Records) PTR(name string, ip net.IP) []dns.RR {
	services, err := r.Services.List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []dns.RR
	add := func(target string) {
		out = append(out, &dns.PTR{Hdr: r.hdr(name, dns.TypePTR), Ptr: target})
	}
	for _, svc := range services {
		if headless(svc) {
			for _, addr := range readyAddresses(r.Endpoints, svc) {
				if addr.Hostname != "" && ip.Equal(net.ParseIP(addr.IP)) {
					add(addr.Hostname + "." + r.fqdn(svc))
				}
			}
			continue
		}
		for _, s := range serviceIPs(svc, r.Endpoints) {
			if ip.Equal(net.ParseIP(s)) {
				add(r.fqdn(svc))
			}
		}
	}
	return out
}

// reverseZone is the SOA owner for negative answers under a reverse tree.
func reverseZone(ip net.IP) string {
	if ip.To4() != nil {
		return "in-addr.arpa."
	}
	return "ip6.arpa."
}
