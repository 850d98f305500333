package main

// The Kubernetes DNS-Based Service Discovery records of one zone (default cluster.local),
// computed on demand from the Service and Endpoints listers:
// https://github.com/kubernetes/dns/blob/master/docs/specification.md

import (
	"net"
	"strings"

	"github.com/miekg/dns"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// schemaVersion is the spec version served at dns-version.<zone>.
const schemaVersion = "1.1.0"

// Records answers names inside the zone and PTR names of Service and endpoint IPs.
type Records struct {
	Zone      string // lower-case FQDN, e.g. "cluster.local."
	TTL       uint32
	Services  corelisters.ServiceLister
	Endpoints corelisters.EndpointsLister
}

// result is what one name holds: exists=false means NXDOMAIN; cname is an ExternalName
// target still to be resolved for A/AAAA questions.
type result struct {
	exists bool
	answer []dns.RR
	extra  []dns.RR
	cname  string
}

var nodata = result{exists: true}

// Lookup answers name (lower-case FQDN inside the zone) for qtype.
func (r *Records) Lookup(name string, qtype uint16) result {
	rel := strings.TrimSuffix(strings.TrimSuffix(name, r.Zone), ".")
	parts := dns.SplitDomainName(rel)
	switch {
	case len(parts) == 0:
		return r.apex(qtype)
	case len(parts) == 1 && parts[0] == "dns-version":
		if qtype != dns.TypeTXT {
			return nodata
		}
		return result{exists: true, answer: []dns.RR{&dns.TXT{Hdr: r.hdr(name, dns.TypeTXT),
			Txt: []string{schemaVersion}}}}
	case parts[len(parts)-1] == "svc":
		return r.lookupService(name, parts[:len(parts)-1], qtype)
	case parts[len(parts)-1] == "pod":
		return r.lookupPod(name, parts[:len(parts)-1], qtype)
	}
	return result{}
}

func (r *Records) apex(qtype uint16) result {
	switch qtype {
	case dns.TypeSOA:
		return result{exists: true, answer: []dns.RR{r.SOA(r.Zone)}}
	case dns.TypeNS:
		return result{exists: true, answer: []dns.RR{&dns.NS{Hdr: r.hdr(r.Zone, dns.TypeNS),
			Ns: "ns.dns." + r.Zone}}}
	}
	return nodata
}

// SOA is the authority record sent with NXDOMAIN and empty answers.
func (r *Records) SOA(zone string) dns.RR {
	return &dns.SOA{Hdr: r.hdr(zone, dns.TypeSOA), Ns: "ns.dns." + r.Zone,
		Mbox: "hostmaster." + r.Zone, Serial: 1, Refresh: 7200, Retry: 1800,
		Expire: 86400, Minttl: r.TTL}
}

// lookupService: parts are the labels before "svc", the namespace last.
func (r *Records) lookupService(name string, parts []string, qtype uint16) result {
	if len(parts) == 0 {
		return nodata
	}
	ns := parts[len(parts)-1]
	if len(parts) == 1 {
		if all, _ := r.Services.Services(ns).List(labels.Everything()); len(all) > 0 {
			return nodata
		}
		return result{}
	}
	svc, err := r.Services.Services(ns).Get(parts[len(parts)-2])
	if err != nil {
		return result{}
	}
	switch {
	case len(parts) == 2:
		return r.serviceRecords(name, svc, qtype)
	case len(parts) == 3 && strings.HasPrefix(parts[0], "_"):
		if len(r.srv(svc, "", parts[0][1:])) == 0 {
			return result{}
		}
		return nodata
	case len(parts) == 3:
		return r.endpointRecords(name, svc, parts[0], qtype)
	case len(parts) == 4 && strings.HasPrefix(parts[0], "_") && strings.HasPrefix(parts[1], "_"):
		srvs := r.srv(svc, parts[0][1:], parts[1][1:])
		if len(srvs) == 0 {
			return result{}
		}
		if qtype != dns.TypeSRV {
			return nodata
		}
		return r.srvResult(name, srvs)
	}
	return result{}
}

func (r *Records) serviceRecords(name string, svc *v1.Service, qtype uint16) result {
	if svc.Spec.Type == v1.ServiceTypeExternalName {
		target := dns.Fqdn(strings.ToLower(svc.Spec.ExternalName))
		rr := &dns.CNAME{Hdr: r.hdr(name, dns.TypeCNAME), Target: target}
		return result{exists: true, answer: []dns.RR{rr}, cname: target}
	}
	switch qtype {
	case dns.TypeA, dns.TypeAAAA:
		return result{exists: true, answer: r.addresses(name, serviceIPs(svc, r.Endpoints), qtype)}
	case dns.TypeSRV:
		return r.srvResult(name, r.srv(svc, "", ""))
	}
	return nodata
}

func (r *Records) endpointRecords(name string, svc *v1.Service, host string, qtype uint16) result {
	if !headless(svc) {
		return result{}
	}
	var ips []string
	for _, addr := range readyAddresses(r.Endpoints, svc) {
		if hostLabel(addr) == host {
			ips = append(ips, addr.IP)
		}
	}
	if len(ips) == 0 {
		return result{}
	}
	return result{exists: true, answer: r.addresses(name, ips, qtype)}
}

// lookupPod serves <a-b-c-d>.<namespace>.pod.<zone> for any name that spells an IP.
func (r *Records) lookupPod(name string, parts []string, qtype uint16) result {
	if len(parts) < 2 {
		return nodata
	}
	if len(parts) > 2 {
		return result{}
	}
	ip := net.ParseIP(strings.Replace(parts[0], "-", ".", -1))
	if ip == nil || ip.To4() == nil {
		ip = net.ParseIP(strings.Replace(parts[0], "-", ":", -1))
	}
	if ip == nil {
		return result{}
	}
	return result{exists: true, answer: r.addresses(name, []string{ip.String()}, qtype)}
}

// addresses are the A (or AAAA) records for the IPs of the asked family.
func (r *Records) addresses(name string, ips []string, qtype uint16) []dns.RR {
	var out []dns.RR
	for _, s := range ips {
		ip := net.ParseIP(s)
		switch {
		case ip == nil:
		case ip.To4() != nil && qtype == dns.TypeA:
			out = append(out, &dns.A{Hdr: r.hdr(name, dns.TypeA), A: ip.To4()})
		case ip.To4() == nil && qtype == dns.TypeAAAA:
			out = append(out, &dns.AAAA{Hdr: r.hdr(name, dns.TypeAAAA), AAAA: ip})
		}
	}
	return out
}

func (r *Records) hdr(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: r.TTL}
}

func (r *Records) fqdn(svc *v1.Service) string {
	return svc.Name + "." + svc.Namespace + ".svc." + r.Zone
}

func headless(svc *v1.Service) bool {
	return svc.Spec.ClusterIP == v1.ClusterIPNone
}

// serviceIPs: the cluster IPs of a normal Service, the ready endpoint IPs of a headless one.
func serviceIPs(svc *v1.Service, eps corelisters.EndpointsLister) []string {
	if headless(svc) {
		var ips []string
		for _, addr := range readyAddresses(eps, svc) {
			ips = append(ips, addr.IP)
		}
		return ips
	}
	if len(svc.Spec.ClusterIPs) > 0 {
		return svc.Spec.ClusterIPs
	}
	if svc.Spec.ClusterIP == "" {
		return nil
	}
	return []string{svc.Spec.ClusterIP}
}

// readyAddresses are the Addresses of the Service's Endpoints (NotReadyAddresses excluded;
// the endpoints controller puts not-ready pods there unless publishNotReadyAddresses is set).
func readyAddresses(eps corelisters.EndpointsLister, svc *v1.Service) []v1.EndpointAddress {
	ep, err := eps.Endpoints(svc.Namespace).Get(svc.Name)
	if err != nil {
		return nil
	}
	var out []v1.EndpointAddress
	for _, subset := range ep.Subsets {
		out = append(out, subset.Addresses...)
	}
	return out
}

// hostLabel names an endpoint: its hostname, else its IP with dashes.
func hostLabel(addr v1.EndpointAddress) string {
	if addr.Hostname != "" {
		return addr.Hostname
	}
	return strings.NewReplacer(".", "-", ":", "-").Replace(addr.IP)
}
