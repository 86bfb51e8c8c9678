// Package spi lends package backend what package cluster keeps out of a
// program's sight: the constructor of a Leadership, whose fields a backend
// cannot set and whose constructor a program should never call.
//
// This is the one way Go has for a package to share an unexported
// constructor with a sibling (grpc-go's internal package does the same):
// cluster sets the variable in its init function, which runs before any
// package that imports cluster, so it is written once and only read after.
// Nothing outside herd's cluster tree can import it.
package spi

import "context"

// NewLeadership returns a *cluster.Leadership of election with term, and the
// function that ends it with a cause; resign releases it in the backend.
// Its result is typed any because this package cannot import cluster (cluster
// imports it); backend.NewLeadership gives it its type back.
var NewLeadership func(election string, term uint64, resign func(context.Context) error) (any, func(cause error))
