"""Tests on a three-node Kafka cluster of their own (`make test-cluster`)."""
