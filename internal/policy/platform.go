package policy

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/clade-gateway/clade-gateway/internal/money"
)

func (w *walker) parsePricing(n *yaml.Node, p string, line int, rp *rawPolicy) {
	o := w.object(n, p, line, "models", "unknown_model", "discount")
	if o == nil {
		return
	}
	w.parseDiscount(o, rp)
	if un, up := o.get("unknown_model"); un != nil {
		if s, ok := w.str(un, up); ok {
			switch m := UnknownModel(s); m {
			case UnknownReject, UnknownChargeMax:
				rp.pricing.UnknownModel = m
			default:
				w.errorf(un, up, "must be reject or charge_max, not %s", strconv.Quote(s))
			}
		}
	}
	mn, mp := o.get("models")
	for _, e := range w.entries(mn, mp) {
		if e.key == "" || strings.ContainsAny(e.key, " \t") {
			w.errorf(e.at, e.path, "model names must be non-empty and contain no spaces")
			continue
		}
		po := w.object(e.val, e.path, e.at.Line, "input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
		if po == nil {
			continue
		}
		var mp ModelPrice
		ok := true
		// Every field is required: cache multipliers differ between
		// models, so guessing them from input would misprice.
		for _, f := range []struct {
			key string
			dst *money.Nanos
		}{{"input", &mp.Input}, {"output", &mp.Output}, {"cache_write_5m", &mp.CacheWrite5m}, {"cache_write_1h", &mp.CacheWrite1h}, {"cache_read", &mp.CacheRead}} {
			fn, fp := po.require(f.key)
			if fn == nil {
				ok = false
				continue
			}
			v, vok := w.amount(fn, fp)
			if vok && v < 0 {
				w.errorf(fn, fp, "must not be negative")
				vok = false
			}
			ok = ok && vok
			*f.dst = v
		}
		if ok {
			if rp.pricing.Models == nil {
				rp.pricing.Models = map[string]ModelPrice{}
			}
			rp.pricing.Models[e.key] = mp
		}
	}
}

func (w *walker) parseWebhooks(n *yaml.Node, p string) []rawWebhook {
	var out []rawWebhook
	seen := map[string]int{}
	for i, item := range w.seq(n, p) {
		ip := index(p, i)
		o := w.object(item, ip, item.Line, "name", "url_env", "url_file", "format")
		if o == nil {
			continue
		}
		wh := rawWebhook{at: w.at(item, ip), format: "slack"}
		nn, np := o.require("name")
		ok := nn != nil
		if ok {
			wh.name, ok = w.name(nn, np, "webhook")
		}
		if ok {
			if first, dup := seen[wh.name]; dup {
				w.errorf(nn, np, "webhook name %s also used at line %d", strconv.Quote(wh.name), first)
				ok = false
			}
			seen[wh.name] = nn.Line
		}
		wh.url = w.secretRef(o, "url_env", "url_file")
		if fn, fp := o.get("format"); fn != nil {
			if f, fok := w.str(fn, fp); fok && f != "slack" && f != "json" {
				w.errorf(fn, fp, "must be slack or json, not %s", strconv.Quote(f))
			} else if fok {
				wh.format = f
			}
		}
		if ok {
			out = append(out, wh)
		}
	}
	return out
}
