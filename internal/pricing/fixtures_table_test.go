package pricing

import (
	"time"
)

var fixtureCosts = []fixtureCost{
	// ---- non-streaming responses ----
	{
		// claude-sonnet-5-5 batch (× 0.5): 1200 input × $2 × 0.5 = 1,200,000;
		// 300 output × $10 × 0.5 = 1,500,000 → 2,700,000.
		file: "json_batch_tier.json", model: "claude-sonnet-5-5",
		tokens: toks{Input: 1200, Output: 300},
		comps:  comps{Input: 1_200_000, Output: 1_500_000},
		total:  2_700_000,
	},
	{
		// claude-sonnet-5-5 on 2026-11-27: 7 input × $2 = 14,000; 4000 5m
		// write × $2.50 = 10,000,000; 5000 1h write × $4 = 20,000,000; 30000
		// cache read × $0.10 = 3,000,000; 44 output × $10 = 440,000
		// → 33,454,000.
		file: "json_cache_split.json", model: "claude-sonnet-5-5",
		tokens: toks{Input: 7, CacheWrite5m: 4000, CacheWrite1h: 5000, CacheRead: 30000, Output: 44},
		comps: comps{Input: 14_000, CacheWrite5m: 10_000_000, CacheWrite1h: 20_000_000,
			CacheRead: 3_000_000, Output: 440_000},
		total: 33_454_000,
	},
	{
		// The last second before the cut: cache read still $0.20.
		// 30000 × $0.20 = 6,000,000; the rest as above
		// (14,000 + 10,000,000 + 20,000,000 + 440,000) → 36,454,000.
		file: "json_cache_split.json", variant: "before cache read cut",
		at: time.Date(2026, 10, 6, 23, 59, 59, 0, time.UTC), model: "claude-sonnet-5-5",
		tokens: toks{Input: 7, CacheWrite5m: 4000, CacheWrite1h: 5000, CacheRead: 30000, Output: 44},
		comps: comps{Input: 14_000, CacheWrite5m: 10_000_000, CacheWrite1h: 20_000_000,
			CacheRead: 6_000_000, Output: 440_000},
		total: 36_454_000,
	},
	{
		// 00:00 UTC of 2026-10-07: $0.10, 30000 × $0.10 = 3,000,000 → 33,454,000.
		file: "json_cache_split.json", variant: "at cache read cut",
		at: time.Date(2026, 10, 7, 0, 0, 0, 0, time.UTC), model: "claude-sonnet-5-5",
		tokens: toks{Input: 7, CacheWrite5m: 4000, CacheWrite1h: 5000, CacheRead: 30000, Output: 44},
		comps: comps{Input: 14_000, CacheWrite5m: 10_000_000, CacheWrite1h: 20_000_000,
			CacheRead: 3_000_000, Output: 440_000},
		total: 33_454_000,
	},
	{
		// count_tokens is free and its answer has no usage object.
		file: "json_count_tokens.json", unbilled: "count_tokens answer: no usage object",
	},
	{
		// claude-opus-4-6, inference_geo us (× 1.1, a 4.6 model): 150 input
		// × $5 × 1.1 = 825,000; 25 output × $25 × 1.1 = 687,500 → 1,512,500.
		file: "json_data_residency.json", model: "claude-opus-4-6",
		tokens: toks{Input: 150, Output: 25},
		comps:  comps{Input: 825_000, Output: 687_500},
		total:  1_512_500,
	},
	{
		// An error body: the proxy bills nothing for a refused request.
		file: "json_error.json", unbilled: "error envelope: no usage object",
	},
	{
		// claude-opus-5 fast ($10 / $50): 523 input × $10 = 5,230,000;
		// 48 output × $50 = 2,400,000 → 7,630,000.
		file: "json_fast_mode.json", model: "claude-opus-5",
		tokens: toks{Input: 523, Output: 48},
		comps:  comps{Input: 5_230_000, Output: 2_400_000},
		total:  7_630_000,
	},
	{
		// claude-opus-5-5 after the meter's clamps (input -1 → 0, the string
		// cache read ignored, output 1e300 → 2^40, 2.01 searches → 3, no
		// split so writes are 5m): 3 5m write × $5 = 15,000;
		// 1,099,511,627,776 output × $20 = 21,990,232,555,520,000;
		// 3 searches × $0.01 = 30,000,000 → 21,990,232,585,535,000.
		file: "json_hostile.json", model: "claude-opus-5-5",
		tokens: toks{CacheWrite5m: 3, Output: 1 << 40, WebSearch: 3},
		comps:  comps{CacheWrite5m: 15_000, Output: 21_990_232_555_520_000, WebSearch: 30_000_000},
		total:  21_990_232_585_535_000,
	},
	{
		// claude-sonnet-5-5: 12 input × $2 = 24,000; 2048 5m write × $2.50 =
		// 5,120,000; 10240 cache read × $0.10 = 1,024,000; 350 output (120 of
		// them thinking, not priced again) × $10 = 3,500,000; 1 search ×
		// $0.01 = 10,000,000 → 19,668,000.
		file: "json_text.json", model: "claude-sonnet-5-5",
		tokens: toks{Input: 12, CacheWrite5m: 2048, CacheRead: 10240, Output: 350, WebSearch: 1},
		comps: comps{Input: 24_000, CacheWrite5m: 5_120_000, CacheRead: 1_024_000,
			Output: 3_500_000, WebSearch: 10_000_000},
		total: 19_668_000,
	},
	{
		// claude-opus-5: 2095 input × $5 = 10,475,000; 3611 output (3184
		// thinking included) × $25 = 90,275,000 → 100,750,000.
		file: "json_thinking.json", model: "claude-opus-5",
		tokens: toks{Input: 2095, Output: 3611},
		comps:  comps{Input: 10_475_000, Output: 90_275_000},
		total:  100_750_000,
	},
	{
		// claude-opus-4-8 (the tool input's "usage" is not the response's):
		// 384 input × $5 = 1,920,000; 77 output × $25 = 1,925,000 → 3,845,000.
		file: "json_tool_use.json", model: "claude-opus-4-8",
		tokens: toks{Input: 384, Output: 77},
		comps:  comps{Input: 1_920_000, Output: 1_925_000},
		total:  3_845_000,
	},
	{
		// claude-haiku-5-5, prompt 4 ≤ 100,000 so the low tier: 4 input ×
		// $0.10 = 400; 19 output × $0.50 = 9,500 → 9,900.
		file: "json_usage_first.json", model: "claude-haiku-5-5",
		tokens: toks{Input: 4, Output: 19},
		comps:  comps{Input: 400, Output: 9_500},
		total:  9_900,
	},
	{
		// claude-opus-4-8: 6039 input × $5 = 30,195,000; 931 output × $25 =
		// 23,275,000; 1 search × $0.01 = 10,000,000 → 63,470,000.
		file: "json_web_search.json", model: "claude-opus-4-8",
		tokens: toks{Input: 6039, Output: 931, WebSearch: 1},
		comps:  comps{Input: 30_195_000, Output: 23_275_000, WebSearch: 10_000_000},
		total:  63_470_000,
	},

	// ---- batch results, one row per line ----
	{
		// claude-sonnet-5-5 batch: 1200 input × $2 × 0.5 = 1,200,000;
		// 300 output × $10 × 0.5 = 1,500,000 → 2,700,000.
		file: "batch_results.jsonl", line: "req-1", model: "claude-sonnet-5-5",
		tokens: toks{Input: 1200, Output: 300},
		comps:  comps{Input: 1_200_000, Output: 1_500_000},
		total:  2_700_000,
	},
	{file: "batch_results.jsonl", line: "req-2", unbilled: "errored result: not billed"},
	{file: "batch_results.jsonl", line: "req-3", unbilled: "canceled result: not billed"},
	{file: "batch_results.jsonl", line: "req-4", unbilled: "expired result: not billed"},
	{
		// claude-opus-5 batch and geo us (× 0.5 × 1.1 = × 0.55): 20 input ×
		// $5 = 100,000 × 0.55 = 55,000; 4096 1h write × $10 = 40,960,000 ×
		// 0.55 = 22,528,000; 8192 cache read × $0.50 = 4,096,000 × 0.55 =
		// 2,252,800; 64 output × $25 = 1,600,000 × 0.55 = 880,000
		// → 25,715,800.
		file: "batch_results.jsonl", line: "req-5", model: "claude-opus-5",
		tokens: toks{Input: 20, CacheWrite1h: 4096, CacheRead: 8192, Output: 64},
		comps:  comps{Input: 55_000, CacheWrite1h: 22_528_000, CacheRead: 2_252_800, Output: 880_000},
		total:  25_715_800,
	},

	// ---- streams ----
	{
		// claude-opus-5-5. The final delta grows input (300 → 4100) and cache
		// writes (1500 → 2300) without a split; the 800 unexplained writes go
		// to 1h: 5m 1000, 1h 500 + 800 = 1300. 4100 input × $4 = 16,400,000;
		// 1000 5m write × $5 = 5,000,000; 1300 1h write × $8 = 10,400,000;
		// 4000 cache read × $0.20 = 800,000; 120 output × $20 = 2,400,000;
		// 1 web fetch: free → 35,000,000.
		file: "stream_cache_delta_growth.sse", model: "claude-opus-5-5",
		tokens: toks{Input: 4100, CacheWrite5m: 1000, CacheWrite1h: 1300, CacheRead: 4000, Output: 120},
		comps: comps{Input: 16_400_000, CacheWrite5m: 5_000_000, CacheWrite1h: 10_400_000,
			CacheRead: 800_000, Output: 2_400_000},
		total: 35_000_000,
	},
	{
		// claude-haiku-4-5-20251001: 9 input × $1 = 9,000; 12288 cache read ×
		// $0.10 = 1,228,800; 3 output × $5 = 15,000 → 1,252,800.
		file: "stream_cache_read.sse", model: "claude-haiku-4-5-20251001",
		tokens: toks{Input: 9, CacheRead: 12288, Output: 3},
		comps:  comps{Input: 9_000, CacheRead: 1_228_800, Output: 15_000},
		total:  1_252_800,
	},
	{
		// claude-opus-5: 42 input × $5 = 210,000; 5120 1h write × $10 =
		// 51,200,000; 7 output × $25 = 175,000 → 51,585,000.
		file: "stream_cache_write_1h.sse", model: "claude-opus-5",
		tokens: toks{Input: 42, CacheWrite1h: 5120, Output: 7},
		comps:  comps{Input: 210_000, CacheWrite1h: 51_200_000, Output: 175_000},
		total:  51_585_000,
	},
	{
		// claude-sonnet-5-5: 18 input × $2 = 36,000; 3200 5m write × $2.50 =
		// 8,000,000; 11 output × $10 = 110,000 → 8,146,000.
		file: "stream_cache_write_5m.sse", model: "claude-sonnet-5-5",
		tokens: toks{Input: 18, CacheWrite5m: 3200, Output: 11},
		comps:  comps{Input: 36_000, CacheWrite5m: 8_000_000, Output: 110_000},
		total:  8_146_000,
	},
	{
		// claude-opus-5, service_tier priority (contract pricing, §7.7; the
		// gateway charges list): 64 input × $5 = 320,000; 6 output × $25 =
		// 150,000 → 470,000.
		file: "stream_comments_unknown.sse", model: "claude-opus-5",
		tokens: toks{Input: 64, Output: 6},
		comps:  comps{Input: 320_000, Output: 150_000},
		total:  470_000,
	},
	{
		// claude-sonnet-4-6, geo us (× 1.1): 311 input × $3 = 933,000 × 1.1 =
		// 1,026,300; 57 output × $15 = 855,000 × 1.1 = 940,500 → 1,966,800.
		file: "stream_data_residency.sse", model: "claude-sonnet-4-6",
		tokens: toks{Input: 311, Output: 57},
		comps:  comps{Input: 1_026_300, Output: 940_500},
		total:  1_966_800,
	},
	{
		// claude-opus-5-5, overloaded_error after one delta of 98 data bytes
		// (80 of framing + 18 of "Let me think about"). max_tokens 4096:
		// output = max(2, min(4096, 98)) = 98. 830 input × $4 = 3,320,000;
		// 2048 cache read × $0.20 = 409,600; 98 output × $20 = 1,960,000
		// → 5,689,600.
		file: "stream_error_midstream.sse", interrupted: true, maxTokens: 4096,
		model:  "claude-opus-5-5",
		tokens: toks{Input: 830, CacheRead: 2048, Output: 98},
		comps:  comps{Input: 3_320_000, CacheRead: 409_600, Output: 1_960_000},
		total:  5_689_600,
	},
	{
		// max_tokens 1: output = max(2 reported, min(1, 98)) = 2, never below
		// what was reported. 2 × $20 = 40,000; 3,320,000 + 409,600 + 40,000
		// → 3,769,600.
		file: "stream_error_midstream.sse", variant: "max_tokens 1", interrupted: true, maxTokens: 1,
		model:  "claude-opus-5-5",
		tokens: toks{Input: 830, CacheRead: 2048, Output: 2},
		comps:  comps{Input: 3_320_000, CacheRead: 409_600, Output: 40_000},
		total:  3_769_600,
	},
	{
		// claude-opus-5-5 fast ($8 / $40): 1200 input × $8 = 9,600,000;
		// 204 output × $40 = 8,160,000 → 17,760,000.
		file: "stream_fast_mode.sse", model: "claude-opus-5-5",
		tokens: toks{Input: 1200, Output: 204},
		comps:  comps{Input: 9_600_000, Output: 8_160_000},
		total:  17_760_000,
	},
	{
		// claude-sonnet-5-5 after the clamps (cache writes 1e30 → 2^40 with no
		// usable split, so 5m; output 12 from the last valid delta; 2^40 web
		// fetches are free): 1,099,511,627,776 5m write × $2.50 =
		// 2,748,779,069,440,000; 12 output × $10 = 120,000
		// → 2,748,779,069,560,000.
		file: "stream_hostile.sse", model: "claude-sonnet-5-5",
		tokens: toks{CacheWrite5m: 1 << 40, Output: 12},
		comps:  comps{CacheWrite5m: 2_748_779_069_440_000, Output: 120_000},
		total:  2_748_779_069_560_000,
	},
	{
		// claude-sonnet-5-5 cut mid-event after two deltas of 111 + 101 = 212
		// data bytes (80 of framing each + 31 + 21 of text). max_tokens 1024:
		// output = max(3, min(1024, 212)) = 212. 1500 input × $2 = 3,000,000;
		// 256 5m write × $2.50 = 640,000; 212 output × $10 = 2,120,000
		// → 5,760,000.
		file: "stream_interrupted.sse", interrupted: true, maxTokens: 1024,
		model:  "claude-sonnet-5-5",
		tokens: toks{Input: 1500, CacheWrite5m: 256, Output: 212},
		comps:  comps{Input: 3_000_000, CacheWrite5m: 640_000, Output: 2_120_000},
		total:  5_760_000,
	},
	{
		// max_tokens 100 caps the byte bound: output = max(3, min(100, 212))
		// = 100 × $10 = 1,000,000; 3,000,000 + 640,000 + 1,000,000 → 4,640,000.
		file: "stream_interrupted.sse", variant: "max_tokens 100", interrupted: true, maxTokens: 100,
		model:  "claude-sonnet-5-5",
		tokens: toks{Input: 1500, CacheWrite5m: 256, Output: 100},
		comps:  comps{Input: 3_000_000, CacheWrite5m: 640_000, Output: 1_000_000},
		total:  4_640_000,
	},
	{
		// Torn inside the message_start data line: nothing is known, not even
		// the model, so the proxy charges the hold's estimate instead.
		file: "stream_interrupted.sse", variant: "cut before message_start", cut: 150,
		interrupted: true, maxTokens: 1024,
		unbilled: "no message_start: the hold's estimate is charged",
	},
	{
		// claude-opus-5-5: 25 input × $4 = 100,000; 4096 cache read × $0.20 =
		// 819,200; 15 output × $20 = 300,000 → 1,219,200.
		file: "stream_text.sse", model: "claude-opus-5-5",
		tokens: toks{Input: 25, CacheRead: 4096, Output: 15},
		comps:  comps{Input: 100_000, CacheRead: 819_200, Output: 300_000},
		total:  1_219_200,
	},
	{
		// Same stream with CR line endings → 1,219,200.
		file: "stream_text_cr.sse", model: "claude-opus-5-5",
		tokens: toks{Input: 25, CacheRead: 4096, Output: 15},
		comps:  comps{Input: 100_000, CacheRead: 819_200, Output: 300_000},
		total:  1_219_200,
	},
	{
		// Same stream with CRLF line endings → 1,219,200.
		file: "stream_text_crlf.sse", model: "claude-opus-5-5",
		tokens: toks{Input: 25, CacheRead: 4096, Output: 15},
		comps:  comps{Input: 100_000, CacheRead: 819_200, Output: 300_000},
		total:  1_219_200,
	},
	{
		// claude-opus-4-8: 58 input × $5 = 290,000; 1840 output (1520
		// thinking included) × $25 = 46,000,000 → 46,290,000.
		file: "stream_thinking.sse", model: "claude-opus-4-8",
		tokens: toks{Input: 58, Output: 1840},
		comps:  comps{Input: 290_000, Output: 46_000_000},
		total:  46_290_000,
	},
	{
		// claude-sonnet-5-5: 472 input × $2 = 944,000; 89 output × $10 =
		// 890,000 → 1,834,000.
		file: "stream_tool_use.sse", model: "claude-sonnet-5-5",
		tokens: toks{Input: 472, Output: 89},
		comps:  comps{Input: 944_000, Output: 890_000},
		total:  1_834_000,
	},
	{
		// claude-opus-4-8, input grown mid-stream 2679 → 10682 by the search
		// results: 10682 input × $5 = 53,410,000; 510 output × $25 =
		// 12,750,000; 1 search × $0.01 = 10,000,000 → 76,160,000.
		file: "stream_web_search.sse", model: "claude-opus-4-8",
		tokens: toks{Input: 10682, Output: 510, WebSearch: 1},
		comps:  comps{Input: 53_410_000, Output: 12_750_000, WebSearch: 10_000_000},
		total:  76_160_000,
	},
}
