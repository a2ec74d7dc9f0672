package deploy_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// These tests check that the deployment files fit together: the policies
// they mount load with the real loader, every secret a policy names is
// passed in, and Prometheus scrapes what compose runs.

// placeholder stands in for every secret: it passes as a key and as a URL.
const placeholder = "https://placeholder.invalid/set-by-the-deployment"

func loadPolicy(t *testing.T, path string, env func(string) bool) *policy.Policy {
	t.Helper()
	opts := policy.LoadOptions{
		ResolveSecrets: true,
		Getenv: func(k string) string {
			if env(k) {
				return placeholder
			}
			return ""
		},
	}
	// As shipped, with placeholder token hashes, it must refuse to start.
	if _, err := policy.Load(path, opts); err == nil || !strings.Contains(err.Error(), "is a placeholder") ||
		!strings.Contains(err.Error(), "clade-gateway new-token") {
		t.Errorf("policy %s as shipped: %v, want a refusal naming its placeholder tokens", path, err)
	}
	path = withTokens(t, path)
	p, err := policy.Load(path, policy.LoadOptions{
		ResolveSecrets: true,
		Getenv: func(k string) string {
			if env(k) {
				return placeholder
			}
			return ""
		},
	})
	if err != nil {
		t.Fatalf("policy %s does not load with the environment the deployment gives it:\n%v", path, err)
	}
	return p
}

func TestSamplePoliciesValid(t *testing.T) {
	// The quick-start samples name secrets the reader supplies: check them
	// without resolving.
	for _, f := range []string{"clade.yaml", "clade.example.yaml"} {
		if _, err := os.Stat(f); err != nil {
			continue
		}
		if _, err := policy.Load(f, policy.LoadOptions{}); err != nil {
			t.Errorf("deploy/%s: %v", f, err)
		}
	}
}

type composeFile struct {
	Services map[string]struct {
		Build       any               `yaml:"build"`
		Image       string            `yaml:"image"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
	} `yaml:"services"`
}

func TestComposeWiring(t *testing.T) {
	var c composeFile
	decodeInto(t, "compose/compose.yaml", &c)
	var gateways []string
	for name, s := range c.Services {
		env := s.Environment
		if env["CLADE_LISTEN"] == "" {
			continue
		}
		gateways = append(gateways, name)
		t.Run(name, func(t *testing.T) {
			if s.Build == nil {
				t.Error("gateway is not built from the repository Dockerfile")
			}
			if got := env["CLADE_ADMIN_LISTEN"]; got != "0.0.0.0:9090" {
				t.Errorf("CLADE_ADMIN_LISTEN = %q: Prometheus in another container cannot scrape it", got)
			}
			if !strings.HasPrefix(env["CLADE_REDIS_URL"], "redis://redis:") || c.Services["redis"].Image == "" {
				t.Errorf("CLADE_REDIS_URL = %q, want the compose redis service", env["CLADE_REDIS_URL"])
			}
			src := ""
			for _, v := range s.Volumes {
				parts := strings.Split(v, ":")
				if len(parts) >= 2 && parts[1] == env["CLADE_CONFIG"] {
					src = filepath.Join("compose", parts[0])
				}
			}
			if src == "" {
				t.Fatalf("no volume is mounted at CLADE_CONFIG=%q", env["CLADE_CONFIG"])
			}
			loadPolicy(t, src, func(k string) bool { return env[k] != "" })
		})
	}
	sort.Strings(gateways)
	if len(gateways) != 2 {
		t.Fatalf("compose runs gateways %v, want two replicas", gateways)
	}
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join("compose", src)); err != nil {
					t.Errorf("service %s mounts %s, which does not exist", name, src)
				}
			}
		}
	}

	// Prometheus must scrape exactly the gateways' admin ports.
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	decodeInto(t, "prometheus/prometheus.yml", &prom)
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		if sc.JobName == "clade-gateway" {
			for _, st := range sc.StaticConfigs {
				targets = append(targets, st.Targets...)
			}
		}
	}
	var want []string
	for _, g := range gateways {
		want = append(want, g+":9090")
	}
	sort.Strings(targets)
	if diff := cmp.Diff(want, targets); diff != "" {
		t.Errorf("job clade-gateway targets (-want +got):\n%s", diff)
	}
}

type kustomization struct {
	Resources          []string `yaml:"resources"`
	ConfigMapGenerator []struct {
		Name  string   `yaml:"name"`
		Files []string `yaml:"files"`
	} `yaml:"configMapGenerator"`
}

type deployment struct {
	Kind string `yaml:"kind"`
	Spec struct {
		Replicas int `yaml:"replicas"`
		Template struct {
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				Containers []container `yaml:"containers"`
				Volumes    []struct {
					Name      string `yaml:"name"`
					EmptyDir  any    `yaml:"emptyDir"`
					Projected *struct {
						Sources []struct {
							ConfigMap *struct {
								Name  string `yaml:"name"`
								Items []struct {
									Key  string `yaml:"key"`
									Path string `yaml:"path"`
								} `yaml:"items"`
							} `yaml:"configMap"`
						} `yaml:"sources"`
					} `yaml:"projected"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type container struct {
	Name  string `yaml:"name"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	ReadinessProbe  probe `yaml:"readinessProbe"`
	LivenessProbe   probe `yaml:"livenessProbe"`
	SecurityContext struct {
		ReadOnlyRootFilesystem bool `yaml:"readOnlyRootFilesystem"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
	} `yaml:"resources"`
}

func TestKubernetesWiring(t *testing.T) {
	const base = "kubernetes/base"
	var k kustomization
	decodeInto(t, filepath.Join(base, "kustomization.yaml"), &k)
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(base, r)); err != nil {
			t.Errorf("kustomization resource %s: %v", r, err)
		}
	}
	// configMap name -> key -> source file
	cms := map[string]map[string]string{}
	for _, g := range k.ConfigMapGenerator {
		cms[g.Name] = map[string]string{}
		for _, f := range g.Files {
			key, src, ok := strings.Cut(f, "=")
			if !ok {
				key, src = filepath.Base(f), f
			}
			cms[g.Name][key] = filepath.Join(base, src)
		}
	}

	var d deployment
	decodeInto(t, filepath.Join(base, "deployment.yaml"), &d)
	ps := d.Spec.Template.Spec
	if d.Spec.Replicas != 2 {
		t.Errorf("replicas = %d, want 2", d.Spec.Replicas)
	}
	if !ps.SecurityContext.RunAsNonRoot {
		t.Error("pod does not set runAsNonRoot")
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(ps.Containers))
	}
	c := ps.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = placeholder
		case e.ValueFrom != nil:
			t.Errorf("env %s: only secretKeyRef is expected", e.Name)
		default:
			env[e.Name] = e.Value
		}
	}
	if env["CLADE_ADMIN_LISTEN"] != "0.0.0.0:9090" {
		t.Errorf("CLADE_ADMIN_LISTEN = %q: probes and Prometheus cannot reach it", env["CLADE_ADMIN_LISTEN"])
	}
	adminPort := ""
	for _, p := range c.Ports {
		if p.ContainerPort == 9090 {
			adminPort = p.Name
		}
	}
	if adminPort == "" {
		t.Error("no container port 9090")
	}
	for _, pr := range []struct {
		name string
		p    probe
		path string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}} {
		if pr.p.HTTPGet.Path != pr.path || pr.p.HTTPGet.Port != adminPort {
			t.Errorf("%s probe = %s on %q, want %s on the admin port %q", pr.name,
				pr.p.HTTPGet.Path, pr.p.HTTPGet.Port, pr.path, adminPort)
		}
	}
	if !c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("container root filesystem is writable")
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" {
		t.Error("container has no resource requests")
	}
	mounts := map[string]string{} // path -> volume
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}

	// Rebuild /etc/clade as the projected volume lays it out, checking that
	// every team file ships in a ConfigMap the pod mounts.
	etc := t.TempDir()
	projected := map[string]bool{}
	for _, v := range ps.Volumes {
		if v.Name == mounts[env["CLADE_DATA_DIR"]] && v.EmptyDir == nil {
			t.Errorf("CLADE_DATA_DIR volume %s is not an emptyDir", v.Name)
		}
		if v.Projected == nil || v.Name != mounts[env["CLADE_CONFIG"]] {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ConfigMap == nil {
				continue
			}
			files, ok := cms[s.ConfigMap.Name]
			if !ok {
				t.Errorf("projected ConfigMap %s is not generated by the kustomization", s.ConfigMap.Name)
				continue
			}
			for _, it := range s.ConfigMap.Items {
				src, ok := files[it.Key]
				if !ok {
					t.Errorf("ConfigMap %s has no key %s", s.ConfigMap.Name, it.Key)
					continue
				}
				projected[filepath.Clean(src)] = true
				dst := filepath.Join(etc, it.Path)
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(dst, read(t, src), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if mounts[env["CLADE_DATA_DIR"]] == "" {
		t.Errorf("nothing is mounted at CLADE_DATA_DIR=%q (read-only root)", env["CLADE_DATA_DIR"])
	}
	teams, _ := filepath.Glob(filepath.Join(base, "policy/teams/*.yaml"))
	if len(teams) == 0 {
		t.Fatal("no team policy files")
	}
	for _, f := range append(teams, filepath.Join(base, "policy/clade.yaml")) {
		if !projected[filepath.Clean(f)] {
			t.Errorf("%s is not in any ConfigMap projected into CLADE_CONFIG=%s", f, env["CLADE_CONFIG"])
		}
	}
	p := loadPolicy(t, etc, func(k string) bool { return env[k] != "" })
	if len(p.Teams) != len(teams) {
		t.Errorf("policy has %d teams, want one per team file (%d)", len(p.Teams), len(teams))
	}
}

// Every Kubernetes object in the base has a kind and a name.
func TestKubernetesObjectsNamed(t *testing.T) {
	files := walk(t, func(p string) bool {
		return strings.HasPrefix(p, "kubernetes/") && strings.HasSuffix(p, ".yaml") &&
			!strings.Contains(p, "/policy/") && filepath.Base(p) != "kustomization.yaml"
	})
	for _, f := range files {
		docs, err := decodeYAML(read(t, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, d := range docs {
			var obj struct {
				APIVersion string `yaml:"apiVersion"`
				Kind       string `yaml:"kind"`
				Metadata   struct {
					Name string `yaml:"name"`
				} `yaml:"metadata"`
			}
			b, _ := yaml.Marshal(d)
			if err := yaml.Unmarshal(b, &obj); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			if obj.APIVersion == "" || obj.Kind == "" || obj.Metadata.Name == "" {
				t.Errorf("%s document %d lacks apiVersion, kind or metadata.name", f, i)
			}
		}
	}
}

func TestDockerfile(t *testing.T) {
	df := string(read(t, "../Dockerfile"))
	for _, want := range []string{
		"go mod download",
		"CGO_ENABLED=0",
		"-trimpath",
		"./cmd/clade-gateway",
		"FROM gcr.io/distroless/static-debian12:nonroot",
		"USER nonroot",
		"EXPOSE 8080 9090",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// The module download layer must come before the sources are copied,
	// or every code change re-downloads every module.
	if strings.Index(df, "go mod download") > strings.Index(df, "COPY . .") {
		t.Error("go mod download runs after COPY . .: the module layer is never reused")
	}
}
