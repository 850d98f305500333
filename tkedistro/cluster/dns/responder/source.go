package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/ioutil"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// source gives the listers the records are computed from.
type source struct {
	services  corelisters.ServiceLister
	endpoints corelisters.EndpointsLister
	synced    func() bool
	origin    string
}

func openSource(opts options, stop <-chan struct{}) (source, error) {
	if opts.static != "" {
		return staticSource(opts.static)
	}
	config, err := restConfig(opts.kubeconfig)
	if err != nil {
		return source{}, err
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return source{}, err
	}
	return informerSource(client, stop), nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return rest.InClusterConfig()
	}
	return clientcmd.BuildConfigFromFlags("", kubeconfig)
}

// informerSource watches Services and Endpoints; synced turns true once both caches are.
func informerSource(client kubernetes.Interface, stop <-chan struct{}) source {
	factory := informers.NewSharedInformerFactory(client, 0)
	services := factory.Core().V1().Services()
	endpoints := factory.Core().V1().Endpoints()
	svcSynced, epSynced := services.Informer().HasSynced, endpoints.Informer().HasSynced
	factory.Start(stop)
	return source{services: services.Lister(), endpoints: endpoints.Lister(),
		synced: func() bool { return svcSynced() && epSynced() }, origin: "the API"}
}

// staticSource is the test mode: the Services and Endpoints of a multi-document YAML file.
func staticSource(path string) (source, error) {
	data, err := ioutil.ReadFile(path)
	if err != nil {
		return source{}, err
	}
	svcs, eps, err := decodeObjects(data)
	if err != nil {
		return source{}, fmt.Errorf("%s: %v", path, err)
	}
	return source{services: corelisters.NewServiceLister(svcs),
		endpoints: corelisters.NewEndpointsLister(eps),
		synced:    func() bool { return true }, origin: "static file " + path}, nil
}

func newIndexer() cache.Indexer {
	return cache.NewIndexer(cache.MetaNamespaceKeyFunc,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
}

func decodeObjects(data []byte) (cache.Indexer, cache.Indexer, error) {
	svcs, eps := newIndexer(), newIndexer()
	reader := yaml.NewYAMLReader(bufioReader(data))
	decode := scheme.Codecs.UniversalDeserializer().Decode
	for i := 0; ; i++ {
		doc, err := reader.Read()
		if err == io.EOF {
			return svcs, eps, nil
		} else if err != nil {
			return nil, nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, _, err := decode(doc, nil, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("document %d: %v", i+1, err)
		}
		switch o := obj.(type) {
		case *v1.Service:
			defaultNamespace(&o.ObjectMeta)
			err = svcs.Add(o)
		case *v1.Endpoints:
			defaultNamespace(&o.ObjectMeta)
			err = eps.Add(o)
		default:
			err = fmt.Errorf("document %d: only Service and Endpoints are served, not %T", i+1, obj)
		}
		if err != nil {
			return nil, nil, err
		}
	}
}

func bufioReader(data []byte) *bufio.Reader {
	return bufio.NewReader(bytes.NewReader(data))
}

func defaultNamespace(meta *metav1.ObjectMeta) {
	if meta.Namespace == "" {
		meta.Namespace = "default"
	}
}
