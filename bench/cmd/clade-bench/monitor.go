package main

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"time"
)

// monitorRoundTrips counts, by command, what clients sent Redis while fn
// ran: round trips, not the commands Lua scripts run inside Redis, which
// INFO commandstats counts alike. It uses MONITOR, which slows Redis, so it
// runs apart from the measured segments.
func monitorRoundTrips(addr string, fn func()) (map[string]int64, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := fmt.Fprint(c, "MONITOR\r\n"); err != nil {
		return nil, err
	}
	rd := bufio.NewReaderSize(c, 1<<20)
	if ok, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(ok, "+OK") {
		return nil, fmt.Errorf("MONITOR: %q %w", ok, err)
	}
	counts := map[string]int64{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			// +1764224000.123456 [0 127.0.0.1:40000] "evalsha" "..." ...
			// A command run by a script shows "[0 lua]" as its client.
			_, rest, ok := strings.Cut(line, " [")
			if !ok {
				continue
			}
			client, rest, ok := strings.Cut(rest, "] \"")
			if !ok || strings.HasSuffix(client, " lua") {
				continue
			}
			name, _, _ := strings.Cut(rest, "\"")
			counts[strings.ToLower(name)]++
		}
	}()
	fn()
	time.Sleep(300 * time.Millisecond) // the last settlements, and MONITOR's backlog
	c.Close()
	<-done
	return counts, nil
}
