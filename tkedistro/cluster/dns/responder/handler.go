package main

import (
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// maxChase bounds CNAME chains followed for ExternalName Services.
const maxChase = 8

// Handler answers the cluster zone and the reverse names of ReverseNets from Records and
// forwards every other question to Upstreams ("ip:port"), SERVFAIL when none answers.
type Handler struct {
	Records     *Records
	ReverseNets []*net.IPNet
	Upstreams   []string
	Timeout     time.Duration
}

// ServeDNS implements dns.Handler.
func (h *Handler) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	proto := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		proto = "tcp"
	}
	writeReply(w, req, h.Answer(req, proto), proto)
}

// Answer builds the reply to req as received over proto ("udp" or "tcp").
func (h *Handler) Answer(req *dns.Msg, proto string) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	q := req.Question[0]
	name := strings.ToLower(dns.Fqdn(q.Name))
	switch {
	case dns.IsSubDomain(h.Records.Zone, name):
		res := h.Records.Lookup(name, q.Qtype)
		if res.cname != "" && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA) {
			res.answer = append(res.answer, h.chase(res.cname, q.Qtype, proto, 1)...)
		}
		return h.authoritative(m, q.Name, res, h.Records.Zone)
	case reverseIP(name) != nil:
		ip := reverseIP(name)
		ptrs := h.Records.PTR(q.Name, ip)
		if len(ptrs) > 0 {
			if q.Qtype != dns.TypePTR {
				ptrs = nil
			}
			return h.authoritative(m, q.Name, result{exists: true, answer: ptrs}, reverseZone(ip))
		}
		if h.ownsIP(ip) {
			return h.authoritative(m, q.Name, result{}, reverseZone(ip))
		}
	}
	return h.forward(req, proto)
}

func (h *Handler) authoritative(m *dns.Msg, qname string, res result, zone string) *dns.Msg {
	m.Authoritative = true
	for _, rr := range res.answer {
		if strings.EqualFold(rr.Header().Name, qname) {
			rr.Header().Name = qname // answer in the case the question was asked
		}
	}
	m.Answer, m.Extra = res.answer, res.extra
	if !res.exists {
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{h.Records.SOA(zone)}
	}
	return m
}

func (h *Handler) ownsIP(ip net.IP) bool {
	for _, n := range h.ReverseNets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// chase resolves an ExternalName target: from the zone when it is inside, else upstream.
func (h *Handler) chase(target string, qtype uint16, proto string, depth int) []dns.RR {
	if dns.IsSubDomain(h.Records.Zone, target) {
		res := h.Records.Lookup(target, qtype)
		if res.cname != "" && depth < maxChase {
			return append(res.answer, h.chase(res.cname, qtype, proto, depth+1)...)
		}
		return res.answer
	}
	q := new(dns.Msg)
	q.SetQuestion(target, qtype)
	if resp := h.exchange(q, proto); resp != nil {
		return resp.Answer
	}
	return nil
}

// forward relays req to the first upstream that answers; SERVFAIL at once without any.
func (h *Handler) forward(req *dns.Msg, proto string) *dns.Msg {
	if resp := h.exchange(req, proto); resp != nil {
		resp.Id = req.Id
		return resp
	}
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	return m
}

func (h *Handler) exchange(req *dns.Msg, proto string) *dns.Msg {
	client := &dns.Client{Net: proto, Timeout: h.Timeout}
	for _, upstream := range h.Upstreams {
		resp, _, err := client.Exchange(req, upstream)
		if err == nil && resp != nil {
			return resp
		}
	}
	return nil
}

// writeReply sends m, trimmed to the client's UDP size (512 bytes, or its EDNS0 size) with
// the TC bit set when it does not fit, so the client retries over TCP.
func writeReply(w dns.ResponseWriter, req, m *dns.Msg, proto string) {
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		if int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
		if m.IsEdns0() == nil {
			m.SetEdns0(uint16(size), false)
		}
	}
	m.Compress = true
	if proto == "udp" && m.Len() > size {
		truncate(m, size)
	}
	_ = w.WriteMsg(m)
}

func truncate(m *dns.Msg, size int) {
	m.Truncated = true
	var opt []dns.RR
	for _, rr := range m.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			opt = append(opt, rr)
		}
	}
	m.Extra, m.Ns = opt, nil
	for len(m.Answer) > 0 && m.Len() > size {
		m.Answer = m.Answer[:len(m.Answer)-1]
	}
}
