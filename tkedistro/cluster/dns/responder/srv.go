package main

import (
	"strings"

	"github.com/miekg/dns"
	v1 "k8s.io/api/core/v1"
)

// srvTarget is one SRV answer before it becomes records.
type srvTarget struct {
	port   int32
	target string
	ips    []string
}

// srv lists the SRV targets of named ports matching port and proto ("" matches any):
// the Service name for a normal Service, each ready endpoint for a headless one.
func (r *Records) srv(svc *v1.Service, port, proto string) []srvTarget {
	match := func(name string, p v1.Protocol) bool {
		return name != "" && (port == "" || name == port) &&
			(proto == "" || strings.ToLower(string(p)) == proto)
	}
	var out []srvTarget
	if !headless(svc) {
		ips := serviceIPs(svc, r.Endpoints)
		for _, sp := range svc.Spec.Ports {
			if match(sp.Name, sp.Protocol) {
				out = append(out, srvTarget{sp.Port, r.fqdn(svc), ips})
			}
		}
		return out
	}
	ep, err := r.Endpoints.Endpoints(svc.Namespace).Get(svc.Name)
	if err != nil {
		return nil
	}
	for _, subset := range ep.Subsets {
		for _, ep := range subset.Ports {
			if !match(ep.Name, ep.Protocol) {
				continue
			}
			for _, addr := range subset.Addresses {
				out = append(out, srvTarget{ep.Port, hostLabel(addr) + "." + r.fqdn(svc),
					[]string{addr.IP}})
			}
		}
	}
	return out
}

// srvResult: SRV records with equal priority and weights, the targets' A/AAAA as extra.
func (r *Records) srvResult(name string, targets []srvTarget) result {
	res := result{exists: true}
	if len(targets) == 0 {
		return res
	}
	weight := uint16(100 / len(targets))
	if weight == 0 {
		weight = 1
	}
	seen := map[string]bool{}
	for _, t := range targets {
		res.answer = append(res.answer, &dns.SRV{Hdr: r.hdr(name, dns.TypeSRV), Priority: 0,
			Weight: weight, Port: uint16(t.port), Target: t.target})
		if seen[t.target] {
			continue
		}
		seen[t.target] = true
		res.extra = append(res.extra, r.addresses(t.target, t.ips, dns.TypeA)...)
		res.extra = append(res.extra, r.addresses(t.target, t.ips, dns.TypeAAAA)...)
	}
	return res
}
