"""The conformance image catalogue derived from a tiny k8s-shaped tree written in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tkedistro.conformance.catalog import load_catalog, specs_needing
from tkedistro.core.errors import ClusterError

MANIFEST = '''package image

// RegistryList holds public and private image registries
type RegistryList struct {
	DockerLibraryRegistry string `yaml:"dockerLibraryRegistry"`
	PromoterE2eRegistry   string `yaml:"promoterE2eRegistry"`
	E2eRegistry           string `yaml:"e2eRegistry"`
	GcRegistry            string `yaml:"gcRegistry"`
	InvalidRegistry       string `yaml:"invalidRegistry"`
}

func initReg() RegistryList {
	registry := RegistryList{
		DockerLibraryRegistry: "docker.io/library",
		PromoterE2eRegistry:   "k8s.gcr.io/e2e-test-images",
		E2eRegistry:           "gcr.io/kubernetes-e2e-test-images",
		GcRegistry:            "k8s.gcr.io",
		InvalidRegistry:       "invalid.com/invalid",
	}
	return registry
}

var (
	registry              = initReg()
	dockerLibraryRegistry = registry.DockerLibraryRegistry
	promoterE2eRegistry   = registry.PromoterE2eRegistry
	e2eRegistry           = registry.E2eRegistry
	gcRegistry            = registry.GcRegistry
	invalidRegistry       = registry.InvalidRegistry

	// Preconfigured image configs
	imageConfigs = initImageConfigs()
)

func initImageConfigs() map[int]Config {
	configs := map[int]Config{}
	configs[Agnhost] = Config{promoterE2eRegistry, "agnhost", "2.21"}
	configs[BusyBox] = Config{dockerLibraryRegistry, "busybox", "1.29"}
	configs[InvalidRegistryImage] = Config{invalidRegistry, "alpine", "3.1"}
	configs[Kitten] = Config{e2eRegistry, "kitten", "1.0"}
	configs[Nginx] = Config{dockerLibraryRegistry, "nginx", "1.14-alpine"}
	// Pause image
	configs[Pause] = Config{gcRegistry, "pause", "3.2"}
	configs[Redis] = Config{dockerLibraryRegistry, "redis", "5.0.5-alpine"}
	return configs
}

// GetPauseImageName returns the pause image name with proper version
func GetPauseImageName() string {
	return GetE2EImage(Pause)
}
'''

SPECS = '''- testname: serve
  codename: '[sig-demo] Demo should serve [Conformance]'
  file: test/e2e/demo/a.go
- testname: pull
  codename: '[sig-demo] Demo should pull {busybox} [Conformance]'
  file: test/e2e/demo/a.go
- testname: run
  codename: '[sig-demo] Other should run [NodeConformance] [Conformance]'
  file: test/e2e/demo/b.go
'''

A_GO = '''package demo

import (
	"fmt"

	imageutils "k8s.io/kubernetes/test/utils/image"
)

var (
	webserverImage = imageutils.GetE2EImage(imageutils.Nginx)
	count          = 3
)

var _ = SIGDescribe("Demo", func() {
	// imageutils.Kitten in a comment is no reference
	framework.ConformanceIt("should serve", func() {
		if x := map[string]int{"}": 1}; x != nil { /* } */ }
		fmt.Println(webserverImage, "imageutils.Kitten")  // after braces in a string, a comment
	})
	framework.ConformanceIt("should pull {busybox}", func() {
		helperPod(count)
	})
	ginkgo.It("should fail to pull", func() {
		fmt.Println(imageutils.GetE2EImage(imageutils.InvalidRegistryImage))
	})
})
'''

B_GO = '''package demo

import (
	e2epod "k8s.io/kubernetes/test/e2e/framework/pod"
	imageutils "k8s.io/kubernetes/test/utils/image"
)

var _ = SIGDescribe("Other", func() {
	ginkgo.BeforeEach(func() {
		fmt.Println(imageutils.GetE2EImage(imageutils.Nginx))
	})
	ginkgo.Context("elsewhere", func() {
		ginkgo.BeforeEach(func() { fmt.Println(imageutils.GetE2EImage(imageutils.Redis)) })
	})
	ginkgo.It("is no conformance spec", func() {
		fmt.Println(imageutils.GetE2EImage(imageutils.InvalidRegistryImage))
	})
	framework.ConformanceIt("should run [NodeConformance]",
		func() { e2epod.NewPod() })
})
'''

HELPER_GO = '''package demo

import image "k8s.io/kubernetes/test/utils/image"

func helperPod(n int) string {
	return image.GetE2EImage(image.BusyBox)
}
'''

POD_GO = '''package pod

import imageutils "k8s.io/kubernetes/test/utils/image"

// NewPod makes a pause pod.
func NewPod() string {
	return imageutils.GetPauseImageName()
}

func agnhost() string {
	return imageutils.GetE2EImage(imageutils.Agnhost)
}
'''

OTHER_GO = '''package other

import imageutils "k8s.io/kubernetes/test/utils/image"

func kitten() string { return imageutils.GetE2EImage(imageutils.Kitten) }
'''


def write_tree(root: Path, manifest: str = MANIFEST) -> Path:
    files = {
        "test/utils/image/manifest.go": manifest,
        "test/conformance/testdata/conformance.yaml": SPECS,
        "test/e2e/demo/a.go": A_GO,
        "test/e2e/demo/b.go": B_GO,
        "test/e2e/demo/helper.go": HELPER_GO,
        "test/e2e/framework/pod/pod.go": POD_GO,
        "test/e2e/other/other.go": OTHER_GO,
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


SERVE = "[sig-demo] Demo should serve [Conformance]"
PULL = "[sig-demo] Demo should pull {busybox} [Conformance]"
RUN = "[sig-demo] Other should run [NodeConformance] [Conformance]"


def test_needs_are_the_images_spec_files_and_their_helpers_reference(tmp_path: Path) -> None:
    catalog = load_catalog(write_tree(tmp_path))

    assert catalog.registries["promoterE2eRegistry"] == "k8s.gcr.io/e2e-test-images"
    assert len(catalog.all_configs) == 7
    assert catalog.specs == (SERVE, PULL, RUN)
    assert {n.ref for n in catalog.needs} == {
        "docker.io/library/nginx:1.14-alpine", "docker.io/library/busybox:1.29",
        "invalid.com/invalid/alpine:3.1", "k8s.gcr.io/pause:3.2",
        "k8s.gcr.io/e2e-test-images/agnhost:2.21", "docker.io/library/redis:5.0.5-alpine",
    }  # kitten: only in a comment, a string and another package
    busybox = catalog.need("docker.io/library/busybox:1.29")
    assert busybox is not None
    assert (busybox.constant, busybox.registry_key, busybox.name, busybox.version) == (
        "BusyBox", "dockerLibraryRegistry", "busybox", "1.29")
    assert busybox.files == ("test/e2e/demo/helper.go",)


def test_each_spec_gets_the_images_its_block_reaches(tmp_path: Path) -> None:
    catalog = load_catalog(write_tree(tmp_path))
    specs = {n.name: n.specs for n in catalog.needs}

    assert specs["nginx"] == (SERVE, RUN)  # webserverImage; the BeforeEach around RUN
    assert specs["redis"] == ()  # a BeforeEach of a sibling Context
    assert specs["busybox"] == (PULL,)  # through helperPod() in a helper file
    assert specs["pause"] == (RUN,)  # through e2epod.NewPod() and GetPauseImageName()
    assert specs["agnhost"] == ()  # only a framework helper names it
    assert specs["alpine"] == ()  # a plain ginkgo.It, not a conformance spec


def test_only_the_unpullable_registry_is_expected_to_fail(tmp_path: Path) -> None:
    catalog = load_catalog(write_tree(tmp_path))

    assert [n.ref for n in catalog.needs if n.expect_failure] == ["invalid.com/invalid/alpine:3.1"]


def test_specs_needing_names_the_specs_a_missing_image_would_fail(tmp_path: Path) -> None:
    catalog = load_catalog(write_tree(tmp_path))

    assert specs_needing(catalog, ["docker.io/library/busybox:1.29"]) == [PULL]
    assert specs_needing(catalog, ["127.0.0.1:5000/docker.io/library/nginx:1.14-alpine",
                                   "k8s.gcr.io/pause:3.2"]) == [SERVE, RUN]
    assert specs_needing(catalog, ["gcr.io/kubernetes-e2e-test-images/kitten:1.0"]) == []


def test_a_manifest_line_it_cannot_read_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    broken = MANIFEST.replace('configs[Kitten] = Config{e2eRegistry, "kitten", "1.0"}',
                              'configs[Kitten] = NewConfig(e2eRegistry, "kitten")')
    tree = write_tree(tmp_path, broken)

    with pytest.raises(ClusterError) as caught:
        load_catalog(tree)
    line = broken.splitlines().index('\tconfigs[Kitten] = NewConfig(e2eRegistry, "kitten")') + 1
    assert str(caught.value) == (
        f"{tree}/test/utils/image/manifest.go:{line}: cannot read an image config here: "
        "'configs[Kitten] = NewConfig(e2eRegistry, \"kitten\")'")


def test_a_config_on_an_unknown_registry_variable_is_an_error(tmp_path: Path) -> None:
    tree = write_tree(tmp_path, MANIFEST.replace("{e2eRegistry, \"kitten\"",
                                                 "{sampleRegistry, \"kitten\""))

    with pytest.raises(ClusterError, match=r"manifest\.go:\d+: sampleRegistry is not a registry "
                                           r"variable with a default in initReg\(\)"):
        load_catalog(tree)


def test_a_missing_manifest_block_is_named(tmp_path: Path) -> None:
    tree = write_tree(tmp_path, MANIFEST.replace("var (", "var x = (", 1))

    with pytest.raises(ClusterError, match=r"manifest\.go: no `var \(` block"):
        load_catalog(tree)


def test_a_malformed_spec_list_is_an_error(tmp_path: Path) -> None:
    tree = write_tree(tmp_path)
    (tree / "test/conformance/testdata/conformance.yaml").write_text("- testname: x\n")

    with pytest.raises(ClusterError, match=r"conformance\.yaml: entry 0: expected a mapping "
                                           "with `codename` and `file` strings"):
        load_catalog(tree)

