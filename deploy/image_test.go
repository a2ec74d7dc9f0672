package deploy_test

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// make docker must build the image compose and kustomize run, reporting
// the real version: compose uses image clade-gateway:dev, kustomize
// rewrites clade-gateway to newName:newTag.
func TestMakeDockerBuildsTheImageTheManifestsUse(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is needed to read the Makefile's docker recipe")
	}
	cmd := exec.Command("make", "-n", "-C", "..", "docker", "VERSION=v9.9.9-test")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n docker: %v\n%s", err, b)
	}
	recipe := string(b)
	if !strings.Contains(recipe, "--build-arg VERSION=v9.9.9-test") {
		t.Errorf("make docker does not pass the version to the build: %s", recipe)
	}
	tags := map[string]bool{}
	for _, m := range regexp.MustCompile(`-t (\S+)`).FindAllStringSubmatch(recipe, -1) {
		tags[m[1]] = true
	}

	var c composeFile
	decodeInto(t, "compose/compose.yaml", &c)
	for name, s := range c.Services {
		if s.Build != nil && !tags[s.Image] {
			t.Errorf("compose service %s runs %s; make docker tags %v", name, s.Image, tags)
		}
	}
	var k struct {
		Images []struct {
			Name    string `yaml:"name"`
			NewName string `yaml:"newName"`
			NewTag  string `yaml:"newTag"`
		} `yaml:"images"`
	}
	decodeInto(t, filepath.Join("kubernetes", "base", "kustomization.yaml"), &k)
	for _, im := range k.Images {
		if im.Name == "clade-gateway" && !tags[im.NewName+":"+im.NewTag] {
			t.Errorf("kustomize runs %s:%s; make docker tags %v", im.NewName, im.NewTag, tags)
		}
	}
}

// The binary listens on loopback by default, so every way of running it
// in a container must set an address other containers and the published
// port can reach.
func TestContainersListenBeyondLoopback(t *testing.T) {
	df := string(read(t, "../Dockerfile"))
	if !regexp.MustCompile(`(?m)^ENV CLADE_LISTEN=:8080\b`).MatchString(df) {
		t.Error("the Dockerfile does not set CLADE_LISTEN=:8080")
	}
	var c composeFile
	decodeInto(t, "compose/compose.yaml", &c)
	for name, s := range c.Services {
		if s.Build != nil && s.Environment["CLADE_LISTEN"] != ":8080" {
			t.Errorf("compose service %s: CLADE_LISTEN = %q", name, s.Environment["CLADE_LISTEN"])
		}
	}
	var d deployment
	decodeInto(t, filepath.Join("kubernetes", "base", "deployment.yaml"), &d)
	gateways := 0
	for _, ct := range d.Spec.Template.Spec.Containers {
		if ct.Name != "gateway" {
			continue
		}
		gateways++
		found := false
		for _, e := range ct.Env {
			if e.Name == "CLADE_LISTEN" {
				found = e.Value == ":8080"
			}
		}
		if !found {
			t.Errorf("the Kubernetes container %s does not set CLADE_LISTEN=:8080", ct.Name)
		}
	}
	if gateways != 1 {
		t.Errorf("%d containers named gateway in the Deployment, want 1", gateways)
	}
}
