#!/bin/sh
echo booted >> /run/motd
