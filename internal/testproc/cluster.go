package testproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Cluster is a private Redis Cluster on loopback: masters only, no
// replicas, so a node's death is a slot range gone, not a failover.
type Cluster struct {
	Nodes []*Redis
}

// StartCluster starts a cluster of masters for a test; it is stopped at
// the test's cleanup.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	c, err := NewCluster(masters)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// NewCluster starts masters cluster-enabled servers (at least 3, as Redis
// requires), joins them with redis-cli --cluster create, and waits until
// every node reports cluster_state:ok. The caller closes it.
func NewCluster(masters int) (*Cluster, error) {
	if masters < 3 {
		return nil, fmt.Errorf("a Redis Cluster needs at least 3 masters, not %d", masters)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli not on PATH (scripts/deps.sh installs it): %w", err)
	}
	c := &Cluster{}
	for range masters {
		dir, err := os.MkdirTemp("", "testproc-cluster-")
		if err != nil {
			c.Close()
			return nil, err
		}
		n, err := NewRedis(RedisConfig{Dir: dir, Args: []string{
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "2000",
		}})
		if err != nil {
			_ = os.RemoveAll(dir)
			c.Close()
			return nil, err
		}
		n.ownDir = true
		c.Nodes = append(c.Nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range c.Addrs() {
		for {
			info, err := Command(a, time.Second, "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				return nil, fmt.Errorf("cluster node %s never reached cluster_state:ok: %w\n%s", a, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c, nil
}

// Addrs are the nodes' host:port, the seed list a cluster client takes.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// Close kills every node and removes their directories.
func (c *Cluster) Close() {
	for _, n := range c.Nodes {
		n.Close()
	}
}
