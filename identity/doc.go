// Package identity says who is calling: a player or a trusted service.
//
// An [Authenticator] turns a bearer token into an [Identity];
// [TokenAuthenticator] is the default, a fixed table of tokens compared by
// SHA-256 digest in constant time. Transports parse the Authorization
// header with [FromHeader] (or [BearerToken]), then store the identity in
// the request's context with [NewContext]; handlers read it back with
// [FromContext].
//
// The package links the standard library only, so settings, payment
// endpoints, the router gateway and the dialogue server share it without
// linking grpc or each other.
//
// # Usage
//
//	auth, err := identity.NewTokenAuthenticator(map[identity.Token]identity.Identity{
//		"player-token-0123456789": {Kind: identity.KindPlayer, ID: "p1"},
//	})
//	...
//	id, err := identity.FromHeader(ctx, auth, r.Header.Get("Authorization"))
//	if err != nil { // matches identity.ErrUnauthenticated
//		...
//	}
//	ctx = identity.NewContext(ctx, id)
//
// # Concurrency
//
// [TokenAuthenticator] is immutable after construction and safe for
// concurrent use; every [Authenticator] must be.
package identity
