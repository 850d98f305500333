package main

import (
	"context"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

const ns = "dns-1234"

func service(name, clusterIP string, ports ...v1.ServicePort) *v1.Service {
	return &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.ServiceSpec{ClusterIP: clusterIP, Ports: ports, Type: v1.ServiceTypeClusterIP}}
}

func httpPort() v1.ServicePort {
	return v1.ServicePort{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}
}

func endpoints(name string, ready, notReady []v1.EndpointAddress, port int32) *v1.Endpoints {
	return &v1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Subsets: []v1.EndpointSubset{{Addresses: ready, NotReadyAddresses: notReady,
			Ports: []v1.EndpointPort{{Name: "http", Port: port, Protocol: v1.ProtocolTCP}}}}}
}

func addr(ip, hostname string) v1.EndpointAddress {
	return v1.EndpointAddress{IP: ip, Hostname: hostname}
}

// fixture: the objects of the v1.20 conformance DNS specs, served through real informers
// on the fake clientset.
func fixture(t *testing.T) (*Handler, *fake.Clientset) {
	ext := service("dns-test-service-3", "")
	ext.Spec.Type, ext.Spec.ExternalName = v1.ServiceTypeExternalName, "foo.example.com"
	inZone := service("alias", "")
	inZone.Spec.Type, inZone.Spec.ExternalName = v1.ServiceTypeExternalName,
		"test-service-2.dns-1234.svc.cluster.local"
	kube := service("kubernetes", "10.96.0.1", v1.ServicePort{Name: "https", Port: 443, Protocol: v1.ProtocolTCP})
	kube.Namespace = "default"
	client := fake.NewSimpleClientset(
		kube,
		service("test-service-2", "10.96.7.7", httpPort()),
		service("dns-test-service", v1.ClusterIPNone, httpPort()),
		endpoints("dns-test-service",
			[]v1.EndpointAddress{addr("10.244.1.5", "dns-querier-1"), addr("10.244.2.6", "")},
			[]v1.EndpointAddress{addr("10.244.3.7", "not-ready")}, 8080),
		endpoints("test-service-2", []v1.EndpointAddress{addr("10.244.1.5", "")}, nil, 8080),
		ext, inZone,
	)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	src := informerSource(client, stop)
	deadline := time.Now().Add(10 * time.Second)
	for !src.synced() {
		if time.Now().After(deadline) {
			t.Fatal("informers did not sync")
		}
		time.Sleep(10 * time.Millisecond)
	}
	nets, _ := parseCIDRs("10.96.0.0/12,10.244.0.0/16")
	return &Handler{Records: &Records{Zone: "cluster.local.", TTL: 5, Services: src.services,
		Endpoints: src.endpoints}, ReverseNets: nets, Timeout: 200 * time.Millisecond}, client
}

func ask(h *Handler, name string, qtype uint16) *dns.Msg {
	req := new(dns.Msg)
	req.SetQuestion(name, qtype)
	return h.Answer(req, "udp")
}

// values are the answer's data fields, sorted ("10.0.0.1", "0 50 80 target.", ...).
func values(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		fields := strings.SplitN(rr.String(), "\t", 5)
		out = append(out, fields[len(fields)-1])
	}
	sort.Strings(out)
	return out
}

func expect(t *testing.T, h *Handler, name string, qtype uint16, rcode int, want ...string) *dns.Msg {
	t.Helper()
	m := ask(h, name, qtype)
	got := values(m)
	if m.Rcode != rcode || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("%s %s: got %s %q, want %s %q", name, dns.TypeToString[qtype],
			dns.RcodeToString[m.Rcode], got, dns.RcodeToString[rcode], want)
	}
	if m.Authoritative && len(m.Answer) == 0 && (len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA) {
		t.Fatalf("%s %s: an empty answer must carry the SOA, got %v", name, dns.TypeToString[qtype], m.Ns)
	}
	for _, rr := range m.Answer {
		if rr.Header().Ttl != 5 && m.Authoritative {
			t.Fatalf("%s: TTL %d, want 5", rr, rr.Header().Ttl)
		}
	}
	return m
}

func TestClusterIPService(t *testing.T) {
	h, _ := fixture(t)
	expect(t, h, "test-service-2.dns-1234.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "10.96.7.7")
	expect(t, h, "kubernetes.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "10.96.0.1")
	expect(t, h, "Kubernetes.Default.SVC.cluster.local.", dns.TypeA, dns.RcodeSuccess, "10.96.0.1")
	// the name exists: AAAA and TXT are empty answers, not NXDOMAIN (glibc asks both)
	expect(t, h, "test-service-2.dns-1234.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess)
	expect(t, h, "test-service-2.dns-1234.svc.cluster.local.", dns.TypeTXT, dns.RcodeSuccess)
	m := expect(t, h, "_http._tcp.test-service-2.dns-1234.svc.cluster.local.", dns.TypeSRV,
		dns.RcodeSuccess, "0 100 80 test-service-2.dns-1234.svc.cluster.local.")
	if len(m.Extra) != 1 || m.Extra[0].(*dns.A).A.String() != "10.96.7.7" {
		t.Fatalf("SRV extra: %v", m.Extra)
	}
	expect(t, h, "_http._udp.test-service-2.dns-1234.svc.cluster.local.", dns.TypeSRV, dns.RcodeNameError)
	expect(t, h, "_tcp.test-service-2.dns-1234.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess)
	expect(t, h, "test-service-2.dns-1234.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess,
		"0 100 80 test-service-2.dns-1234.svc.cluster.local.")
	// a normal Service has no per-endpoint names
	expect(t, h, "10-244-1-5.test-service-2.dns-1234.svc.cluster.local.", dns.TypeA, dns.RcodeNameError)
}

func TestHeadlessService(t *testing.T) {
	h, _ := fixture(t)
	base := "dns-test-service.dns-1234.svc.cluster.local."
	expect(t, h, base, dns.TypeA, dns.RcodeSuccess, "10.244.1.5", "10.244.2.6")
	expect(t, h, "dns-querier-1."+base, dns.TypeA, dns.RcodeSuccess, "10.244.1.5")
	expect(t, h, "10-244-2-6."+base, dns.TypeA, dns.RcodeSuccess, "10.244.2.6")
	expect(t, h, "not-ready."+base, dns.TypeA, dns.RcodeNameError)
	expect(t, h, "dns-querier-1."+base, dns.TypeAAAA, dns.RcodeSuccess)
	m := expect(t, h, "_http._tcp."+base, dns.TypeSRV, dns.RcodeSuccess,
		"0 50 8080 10-244-2-6."+base, "0 50 8080 dns-querier-1."+base)
	if len(m.Extra) != 2 {
		t.Fatalf("SRV extra: %v", m.Extra)
	}
}

func TestExternalName(t *testing.T) {
	h, client := fixture(t)
	name := "dns-test-service-3.dns-1234.svc.cluster.local."
	expect(t, h, name, dns.TypeCNAME, dns.RcodeSuccess, "foo.example.com.")
	// no upstream: the CNAME alone, quickly
	expect(t, h, name, dns.TypeA, dns.RcodeSuccess, "foo.example.com.")
	// a target inside the zone is resolved here (glibc does not chase CNAMEs itself)
	expect(t, h, "alias.dns-1234.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess,
		"10.96.7.7", "test-service-2.dns-1234.svc.cluster.local.")

	svc, _ := client.CoreV1().Services(ns).Get(context.TODO(), "dns-test-service-3", metav1.GetOptions{})
	svc.Spec.ExternalName = "bar.example.com"
	if _, err := client.CoreV1().Services(ns).Update(context.TODO(), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return strings.Join(values(ask(h, name, dns.TypeCNAME)), "") == "bar.example.com." })
	svc.Spec.Type, svc.Spec.ExternalName, svc.Spec.ClusterIP = v1.ServiceTypeClusterIP, "", "10.96.9.9"
	svc.Spec.Ports = []v1.ServicePort{httpPort()}
	if _, err := client.CoreV1().Services(ns).Update(context.TODO(), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return strings.Join(values(ask(h, name, dns.TypeA)), "") == "10.96.9.9" })
}

func eventually(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatal("the informer update never showed in the answers")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPodsAndZoneNames(t *testing.T) {
	h, _ := fixture(t)
	expect(t, h, "10-244-1-5.dns-1234.pod.cluster.local.", dns.TypeA, dns.RcodeSuccess, "10.244.1.5")
	expect(t, h, "10-244-1-5.dns-1234.pod.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess)
	expect(t, h, "fd00--1.dns-1234.pod.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess, "fd00::1")
	expect(t, h, "not-an-ip.dns-1234.pod.cluster.local.", dns.TypeA, dns.RcodeNameError)
	expect(t, h, "dns-version.cluster.local.", dns.TypeTXT, dns.RcodeSuccess, `"1.1.0"`)
	expect(t, h, "cluster.local.", dns.TypeSOA, dns.RcodeSuccess,
		"ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5")
	// what dig +search tries before the right suffix must be NXDOMAIN, not an empty answer
	expect(t, h, "dns-test-service.dns-1234.dns-1234.svc.cluster.local.", dns.TypeA, dns.RcodeNameError)
	expect(t, h, "kubernetes.default.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError)
	expect(t, h, "kubernetes.default.svc.svc.cluster.local.", dns.TypeA, dns.RcodeNameError)
	expect(t, h, "nosuch.dns-1234.svc.cluster.local.", dns.TypeA, dns.RcodeNameError)
	expect(t, h, "nosuch.cluster.local.", dns.TypeA, dns.RcodeNameError)
	expect(t, h, "dns-1234.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess)
	expect(t, h, "empty-namespace.svc.cluster.local.", dns.TypeA, dns.RcodeNameError)
}

func TestReverse(t *testing.T) {
	h, _ := fixture(t)
	rev := func(ip string) string { s, _ := dns.ReverseAddr(ip); return s }
	expect(t, h, rev("10.96.7.7"), dns.TypePTR, dns.RcodeSuccess, "test-service-2.dns-1234.svc.cluster.local.")
	expect(t, h, rev("10.244.1.5"), dns.TypePTR, dns.RcodeSuccess,
		"dns-querier-1.dns-test-service.dns-1234.svc.cluster.local.")
	expect(t, h, rev("10.96.7.7"), dns.TypeA, dns.RcodeSuccess)
	// unknown inside the reverse CIDRs: NXDOMAIN here; outside: forwarded (none: SERVFAIL)
	expect(t, h, rev("10.96.7.8"), dns.TypePTR, dns.RcodeNameError)
	expect(t, h, rev("192.0.2.1"), dns.TypePTR, dns.RcodeServerFailure)
	if ip := reverseIP(rev("fd00::1")); !ip.Equal(net.ParseIP("fd00::1")) {
		t.Fatalf("ip6.arpa parse: %v", ip)
	}
}
