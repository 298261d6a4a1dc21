// Placeholder until the Kafka bus lands.
int main() { return 0; }
