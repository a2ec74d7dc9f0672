package policy

// Budget windows reset at midnight in a named zone, and the release image
// (distroless static) has no zoneinfo: embed the database so a policy that
// passes check-config on a laptop also loads in the container.
import _ "time/tzdata"
