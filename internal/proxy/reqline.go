package proxy

import (
	"time"

	"go.uber.org/zap"

	"github.com/clade-gateway/clade-gateway/internal/jsonline"
)

// logRequest writes the request log's line for a finished call. With
// Options.RequestLog the line is built by hand (jsonline), the bytes
// Logger's JSON encoder would write (reqline_test.go holds the two
// together): it is written for every request, and at realistic rates,
// with the caches cold between requests, zap's field-by-field encoding was
// the largest part of finishing one. A line with a body error, which zap
// renders in its own ways, still goes through Logger.
func (h *Handler) logRequest(c *call, o outcome, ch charge, end time.Time) {
	bodyErr := o.bodyErr()
	if h.o.RequestLog != nil && bodyErr == nil {
		bp, _ := h.lines.Get().(*[]byte)
		if bp == nil {
			bp = new([]byte)
		}
		b := c.appendRequestLine((*bp)[:0], ch, end)
		_, _ = h.o.RequestLog.Write(b) // the log's writer reports its own failures
		if cap(b) <= 16<<10 {          // a rare huge line does not stay pinned
			*bp = b
			h.lines.Put(bp)
		}
		return
	}
	ce := h.log.Check(zap.InfoLevel, "request")
	if ce == nil {
		return
	}
	f := append(c.logFields(),
		zap.String("route", routeName(c.route)),
		zap.Int("status", c.status),
		zap.Duration("duration", end.Sub(c.start)),
		zap.String("upstream_request_id", c.upstreamID),
		zap.Bool("stream", c.stream),
	)
	if c.metered {
		f = append(f, zap.String("cost_usd", ch.cost.Total.String()))
		if ch.cause != "" {
			f = append(f, zap.String("charged_by", ch.cause))
		}
	}
	if bodyErr != nil {
		f = append(f, logReadErr(bodyErr))
	}
	ce.Write(f...)
}

// appendRequestLine is the request line logRequest's zap path writes,
// field for field, stamped at ts.
func (c *call) appendRequestLine(b []byte, ch charge, ts time.Time) []byte {
	b = jsonline.Start(b, ts, "proxy", "request")
	b = jsonline.Str(b, "request_id", c.id)
	b = jsonline.Str(b, "service", c.service)
	if c.svc != nil {
		b = jsonline.Str(b, "team", c.svc.Team.Name)
		b = jsonline.Str(b, "workspace", c.svc.Workspace.Name)
	}
	if c.model != "" {
		b = jsonline.Str(b, "model", safePath(c.model))
	}
	b = jsonline.Str(b, "route", routeName(c.route))
	b = jsonline.Int(b, "status", int64(c.status))
	b = jsonline.Seconds(b, "duration", ts.Sub(c.start))
	b = jsonline.Str(b, "upstream_request_id", c.upstreamID)
	b = jsonline.Bool(b, "stream", c.stream)
	if c.metered {
		b = jsonline.Str(b, "cost_usd", ch.cost.Total.String())
		if ch.cause != "" {
			b = jsonline.Str(b, "charged_by", ch.cause)
		}
	}
	return jsonline.End(b)
}
