// Package xfs reads XFS file systems.
package xfs
