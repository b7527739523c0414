#!/bin/sh
# add-jars.sh SRC DEST: copy the jars in SRC into DEST, except those whose artifact DEST already
# holds in any version (Spark ships its own Hadoop client, Scala library, snappy, ...; two
# versions of one artifact on a classpath is a conflict). `kafka-clients-3.9.1.jar` is
# artifact `kafka-clients`: the name less its trailing dash-parts that start with a digit.
set -eu
src=$1
dest=$2
for jar in "$src"/*.jar; do
  artifact=$(basename "$jar" .jar)
  while :; do
    last=${artifact##*-}
    case $last in
      [0-9]*) [ "$last" = "$artifact" ] && break; artifact=${artifact%-*} ;;
      *) break ;;
    esac
  done
  if ls "$dest/$artifact"-[0-9]*.jar >/dev/null 2>&1; then
    echo "add-jars: $dest has $artifact already, leaving out $(basename "$jar")"
  else
    cp "$jar" "$dest/"
    echo "add-jars: added $(basename "$jar")"
  fi
done
