"""Keys land where Kafka's own Java default partitioner puts them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from sensor_simulator.delivery import partition_for

from iotpipe import jars

pytestmark = pytest.mark.integration

JAVA = """
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import java.io.*;
import java.nio.charset.StandardCharsets;

public class Partitions {
    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String key; (key = in.readLine()) != null; ) {
            byte[] bytes = key.getBytes(StandardCharsets.UTF_8);
            StringBuilder line = new StringBuilder();
            for (String partitions : args) {
                line.append(BuiltInPartitioner.partitionForKey(bytes, Integer.parseInt(partitions)));
                line.append(' ');
            }
            System.out.println(line.toString().trim());
        }
    }
}
"""


def test_partition_for_matches_kafkas_java_default_partitioner(tmp_path: Path):
    java = shutil.which("java")
    assert java, "Java is needed (it runs the Kafka broker too)"
    source = tmp_path / "Partitions.java"
    source.write_text(JAVA)
    counts = [1, 3, 12]
    keys = [f"sensor-{i:05d}" for i in range(1000)] + ["a", "ü-sensor", "plant-b/line 3"]
    result = subprocess.run(
        [java, "-cp", jars.classpath("kafka"), str(source), *map(str, counts)],
        input="\n".join(keys) + "\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    java_says = [[int(p) for p in line.split()] for line in result.stdout.splitlines()]
    assert java_says == [[partition_for(key.encode(), n) for n in counts] for key in keys]
    assert {row[2] for row in java_says} == set(range(12))
