package admin

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/clade-gateway/clade-gateway/internal/budget"
	"github.com/clade-gateway/clade-gateway/internal/money"
	"github.com/clade-gateway/clade-gateway/internal/policy"
)

// OwnerLister lists the owners of one scope that have windows in the store;
// both budget stores implement it.
type OwnerLister interface {
	Owners(ctx context.Context, scope budget.Scope, prefix string) ([]string, error)
}

// Listing bounds for GET /admin/principals.
const (
	defaultPrincipalPage = 100
	maxPrincipalPage     = 1000
	// statusChunk bounds the budgets read in one store call.
	statusChunk = 512
)

// principalJSON is one principal in GET /admin/principals.
type principalJSON struct {
	From     string       `json:"from"`
	Value    string       `json:"value"` // as stored: a keyed hash with principals.hash_values
	Hashed   bool         `json:"hashed"`
	SpentUSD string       `json:"spent_usd"` // the largest current-window spend of its budgets
	Budgets  []budgetJSON `json:"budgets"`

	spent money.Nanos
}

// principalRows reads every principal of svc the store knows, with the
// current window of each of its budgets.
func (s *server) principalRows(ctx context.Context, p *policy.Policy, svc *policy.Service) ([]principalJSON, error) {
	lister, ok := s.o.Store.(OwnerLister)
	if !ok || len(svc.Principals) == 0 {
		return nil, nil
	}
	names, err := lister.Owners(ctx, budget.ScopePrincipal, svc.Name+"/")
	if err != nil {
		return nil, err
	}
	var rows []principalJSON
	var all []budget.Budget
	var counts []int
	for _, name := range names {
		_, from, value, ok := policy.SplitPrincipalName(name)
		pr := svc.Principal(from)
		if !ok || pr == nil {
			continue // a level since removed from the policy
		}
		bs := pr.BudgetsFor(value)
		rows = append(rows, principalJSON{From: from, Value: value, Hashed: pr.Hashed()})
		all = append(all, bs...)
		counts = append(counts, len(bs))
	}
	st := make([]budget.Status, 0, len(all))
	for i := 0; i < len(all); i += statusChunk {
		part, err := s.o.Store.Status(ctx, all[i:min(i+statusChunk, len(all))])
		if err != nil {
			return nil, err
		}
		st = append(st, part...)
	}
	k := 0
	for i := range rows {
		for range counts[i] {
			j := toJSON(st[k])
			rows[i].Budgets = append(rows[i].Budgets, j)
			rows[i].spent = max(rows[i].spent, st[k].Spent)
			k++
		}
		rows[i].SpentUSD = rows[i].spent.String()
	}
	// Top spenders first; ties in a stable order so pages do not overlap.
	slices.SortFunc(rows, func(a, b principalJSON) int {
		if c := cmp.Compare(b.spent, a.spent); c != 0 {
			return c
		}
		return cmp.Compare(a.From+"/"+a.Value, b.From+"/"+b.Value)
	})
	return rows, nil
}

// principals serves GET /admin/principals?service=&limit=&cursor=. The
// cursor names the last row of the previous page by its spend and name,
// so a page starts after it even when spend moved in between.
func (s *server) principals(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := s.o.Policy()
	svc := p.Services[q.Get("service")]
	if svc == nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "service must name a service of the policy")
		return
	}
	limit := defaultPrincipalPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPrincipalPage {
			writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("limit must be an integer from 1 to %d", maxPrincipalPage))
			return
		}
		limit = n
	}
	after, hasAfter, err := decodeCursor(q.Get("cursor"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "cursor must be a next_cursor value from a previous page")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.Timeout)
	defer cancel()
	rows, err := s.principalRows(ctx, p, svc)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "api_error", "budget store unavailable: "+err.Error())
		return
	}
	start := 0
	if hasAfter {
		start = len(rows)
		for i, row := range rows {
			if after.before(row) {
				start = i
				break
			}
		}
	}
	end := min(start+limit, len(rows))
	page := rows[start:end]
	if page == nil {
		page = []principalJSON{}
	}
	out := map[string]any{"service": svc.Name, "principals": page, "next_cursor": nil}
	if end < len(rows) {
		out["next_cursor"] = encodeCursor(rows[end-1])
	}
	writeJSON(w, http.StatusOK, out)
}

// cursor is the sort key of the last row a page showed.
type cursor struct {
	Spent money.Nanos `json:"s"`
	Name  string      `json:"n"`
}

// before reports whether c sorts before row (row comes after the page).
func (c cursor) before(row principalJSON) bool {
	if row.spent != c.Spent {
		return row.spent < c.Spent
	}
	return row.From+"/"+row.Value > c.Name
}

func encodeCursor(row principalJSON) string {
	b, _ := json.Marshal(cursor{Spent: row.spent, Name: row.From + "/" + row.Value})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, bool, error) {
	if s == "" {
		return cursor{}, false, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, false, err
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return cursor{}, false, err
	}
	return c, true, nil
}

// serviceBudgets serves GET /admin/budgets?service=: the service's own,
// team and workspace budgets, then a scope "principal" row for every
// budget of every principal of the service the store knows.
func (s *server) serviceBudgets(w http.ResponseWriter, r *http.Request, name string) {
	p := s.o.Policy()
	svc := p.Services[name]
	if svc == nil {
		writeError(w, http.StatusNotFound, "not_found_error", fmt.Sprintf("no service %q in the policy", name))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.Timeout)
	defer cancel()
	st, err := s.o.Store.Status(ctx, sortedBudgets(svc.AllBudgets()))
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "api_error", "budget store unavailable: "+err.Error())
		return
	}
	out := make([]budgetJSON, 0, len(st))
	for _, x := range st {
		out = append(out, toJSON(x))
	}
	rows, err := s.principalRows(ctx, p, svc)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "api_error", "budget store unavailable: "+err.Error())
		return
	}
	for _, row := range rows {
		out = append(out, row.Budgets...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"budgets": out})
}

// findAnyBudget finds a policy budget, or a principal's budget named
// "<service>/<from>/<value>" under scope "principal" (the value as shown,
// or the raw one when values are hashed).
func findAnyBudget(p *policy.Policy, scope, name, id string) (budget.Budget, bool) {
	if scope == string(budget.ScopePrincipal) {
		if strings.Count(name, "/") < 2 {
			return budget.Budget{}, false
		}
		return p.PrincipalBudget(name, id)
	}
	return findBudget(p.AllBudgets(), scope, name, id)
}
